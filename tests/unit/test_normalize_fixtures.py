"""Every security record in shared/fixtures/salesforce/ normalises, and golden files pin the output.

Regenerate after a deliberate mapping change with ``UPDATE_GOLDEN=1 uv run pytest tests/unit/test_normalize_fixtures.py``
and review the diff by hand.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from normalize_fixtures import load, record_files

from forwarder.normalize import Rejected, normalize, normalize_doc

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "normalize"
#: Big CSVs (1,466 Login rows...) are checked in full but pinned by their first rows only.
PINNED_ROWS = 5



def _golden_path(relative: str) -> Path:
    return GOLDEN / (relative.replace("/", "__") + ".json")


@pytest.mark.parametrize("relative", record_files())
def test_fixture_normalises_without_rejection(relative: str) -> None:
    records = load(relative)
    assert records, f"{relative}: loader found no records"
    rejected = [r.reason for r in map(normalize_doc, records) if isinstance(r, Rejected)]
    assert rejected == []


@pytest.mark.parametrize("relative", record_files())
def test_fixture_output_matches_golden_file(relative: str) -> None:
    docs = [normalize_doc(r, raw="none") for r in load(relative)[:PINNED_ROWS]]
    golden = _golden_path(relative)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(json.dumps(docs, indent=2, ensure_ascii=False) + "\n")
    assert docs == json.loads(golden.read_text())


@pytest.mark.parametrize("relative", record_files())
def test_validated_model_equals_fast_document(relative: str) -> None:
    for record in load(relative)[:PINNED_ROWS]:
        event = normalize(record)
        assert not isinstance(event, Rejected), event
        assert event.to_doc() == normalize_doc(record)
