"""docs/syslog.md's CEF mapping table is the code's mapping: the documentation cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

from sinks.syslog.cef import EXTENSION_MAP

DOC = Path(__file__).resolve().parents[2] / "docs" / "syslog.md"


def documented_extension_rows() -> list[tuple[str, str, str | None]]:
    rows = re.findall(r"^\| `(\w+)` \| `([\w.@]+)`[^|]*\| ([^|]*)\|$", DOC.read_text(), re.MULTILINE)
    return [(key, path, label.strip() or None) for key, path, label in rows]


def test_cef_mapping_table_matches_the_code() -> None:
    documented = [row for row in documented_extension_rows() if row[0] not in ("rt", "src", "c6a2")]
    assert documented == list(EXTENSION_MAP)
