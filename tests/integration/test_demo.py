"""The README's demo command works: every source's events reach every sink, the default rules' alerts reach
the on-call receivers, and it exits 0 on its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_delivers_all_three_sources_to_every_sink(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "forwarder", "demo", "--duration", "30", "--output", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    ingested = summary["sources"]
    assert set(ingested) == {"streaming", "eventlogfile", "setupaudittrail"}
    assert all(count > 0 for count in ingested.values()), ingested
    assert set(summary["sinks"]) == {"splunk", "datadog", "siem", "archive"}
    for sink, delivered in summary["sinks"].items():
        assert delivered == ingested, f"{sink} got {delivered}, the sources ingested {ingested}"
    assert (tmp_path / "out" / "state.db").exists()
    raised = sum(summary["alerts"].values())
    assert raised > 0, summary["alerts"]  # the default rules fire on the simulated attacks
    assert summary["paged"] == {"hooks": raised, "slack": raised}  # every rule alert reached on-call, once
