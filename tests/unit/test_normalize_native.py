"""The compiled shape builder (``forwarder/normalize/_native.pyx``) builds byte for byte what the Python
shape programs and ``normalize_doc`` build (key order included), takes the common records itself, and
hands every record off its common path to the reference. (``test_normalize_program.py`` runs its tests,
every fixture among them, against both builders.)"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from normalize_fixtures import shape_builder

from forwarder.normalize import Rejected, batch, normalize_doc
from forwarder.normalize.batch import normalize_batch
from forwarder.normalize.engine import _ingested_text
from forwarder.normalize.families import family_for
from forwarder.records import Record

NOW = datetime(2026, 11, 26, 7, 0, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _native_built() -> Any:
    with shape_builder("native"):
        yield


def _benchmark() -> Any:
    """``benchmarks/normalize.py``: its records are built as the sources build them."""
    spec = importlib.util.spec_from_file_location("normalize_benchmark", ROOT / "benchmarks" / "normalize.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outcome(records: list[Record], native: bool, raw: Any = "full") -> tuple[bytes, list[Any]]:
    batch.use_native(native)
    events, rejected = normalize_batch(records, raw=raw, ingested=NOW)
    return orjson.dumps(events), [(r.record, r.reason, r.field) for r in rejected]


def _same_everywhere(records: list[Record], raw: Any = "full") -> tuple[bytes, list[Any]]:
    native = _outcome(records, True, raw)
    assert native == _outcome(records, False, raw)
    reference = [normalize_doc(record, raw=raw, ingested=NOW) for record in records]
    assert native[0] == orjson.dumps([r for r in reference if not isinstance(r, Rejected)])
    assert native[1] == [(r.record, r.reason, r.field) for r in reference if isinstance(r, Rejected)]
    return native


def _slow_calls(records: list[Record]) -> int:
    """How many of ``records`` (one shape) the builder hands to the reference path."""
    first = records[0]
    family, provider = family_for(first.source, first.kind)
    shape = first.fields if first.fields is not None else tuple(first.payload)
    builder = batch._native.Builder(family, first.source, first.kind, provider, shape, True)
    handed: list[Record] = []
    taken = builder.run(records, 0, [], [], _ingested_text(NOW), lambda r: handed.append(r) or {})
    assert taken == len(records)
    return len(handed)


def test_benchmark_records_are_built_in_c_and_equal_the_reference() -> None:
    bench = _benchmark()
    for records in (bench.elf_records(2_000, random.Random(5)), bench.stream_records(2_000, random.Random(5))):
        _same_everywhere(records)
        assert _slow_calls(records) == 0


ELF_EDITS = [
    ("USER_NAME", 5), ("USER_NAME", ""), ("RUN_TIME", "63"), ("RUN_TIME", -1), ("RUN_TIME", 2**63 + 5),
    ("TIMESTAMP_DERIVED", "2026-02-30T10:00:00.000Z"), ("TIMESTAMP_DERIVED", ""), ("TIMESTAMP_DERIVED", "2024-02-29T10:00:00Z"),
    ("TIMESTAMP_DERIVED", "2023-02-29T10:00:00Z"), ("TIMESTAMP_DERIVED", "2026-11-26T10:00:60.000Z"),
    ("TIMESTAMP_DERIVED", "2026-11-26T10:00:00.00xZ"), ("TIMESTAMP_DERIVED", "\uff12026-11-26T10:00:00.000Z"),
    ("SOURCE_IP", "Salesforce.com IP"), ("SOURCE_IP", "2001:DB8::1"), ("TLS_PROTOCOL", ""), ("TLS_PROTOCOL", "bogus"),
    ("TLS_PROTOCOL", 1.2), ("LOGIN_STATUS", ""), ("LOGIN_STATUS", 7), ("LOGIN_TYPE", ""), ("LOGIN_TYPE", "Q"),
    ("URI", "https://x/y?z"), ("URI", '"""/a?b"""'), ("CPU_TIME", 1.5), ("CPU_TIME", -5), ("API_TYPE", None),
    ("EVENT_TYPE", "caf\u00e9"), ("ORGANIZATION_ID", "00D5j000000VI3nAAA"), ("USER_ID_DERIVED", ""),
    ("API_TYPE", 'a"b\\c\n\x01\x1f\t\x7f'), ("SESSION_KEY", "\U0001f600\u2028"), ("DB_TOTAL_TIME", 2**63 - 1),
    ("DB_TOTAL_TIME", 2**64), ("API_VERSION", True), ("LOGIN_KEY", "\ud800"), ("REQUEST_ID", 1.5),
    ("REQUEST_ID", [1, {"a": None}]), ("REQUEST_ID", b"bytes"), ("CLIENT_IP", {"nested": "dict"}),
]  # fmt: skip
STREAM_EDITS = [
    ("Username", 5), ("City", ""), ("LoginLatitude", "21.1"), ("LoginLatitude", float("nan")),
    ("LoginLongitude", float("inf")), ("LoginLongitude", 200.0), ("LoginLatitude", 21), ("EventDate", "2026-11-26T10:00:00Z"),
    ("EventDate", "2026-13-26T10:00:00.000Z"), ("EventDate", None), ("CreatedDate", "2026-11-26T10:00:30.000+0000"),
    ("SourceIp", "nope"), ("Status", None), ("Status", ""), ("Status", 0), ("TlsProtocol", None), ("TlsProtocol", "TLS 1.3"),
    ("LoginType", 7), ("LoginType", ["a"]), ("EventIdentifier", None), ("EventIdentifier", ""), ("AdditionalInfo", {"a": 1}),
    ("EvaluationTime", None), ("UserId", "0055j000000u001"), ("UserId", 55),
]  # fmt: skip
#: only in payloads not decoded from JSON (orjson never gives a lone surrogate): the id path's JSON check
NOT_JSON_EDITS = [("PolicyId", "\udcff"), ("City", "\ud800"), ("Country", 2**70)]


def _mutated(records: list[Record], edits: list[tuple[str, Any]]) -> list[Record]:
    out = []
    for i, record in enumerate(records):
        payload = dict(record.payload)
        if i % 3 == 0:
            key, value = edits[i // 3 % len(edits)]
            payload[key] = value
        out.append(dataclasses.replace(record, payload=payload))
    return out


@pytest.mark.parametrize("case", ["elf", "stream", "stream not from JSON"])
def test_values_off_the_common_path_give_the_reference_results(case: str) -> None:
    bench = _benchmark()
    if case == "elf":
        records = _mutated(bench.elf_records(len(ELF_EDITS) * 6, random.Random(1)), ELF_EDITS)
    elif case == "stream":
        records = _mutated(bench.stream_records(len(STREAM_EDITS) * 6, random.Random(1)), STREAM_EDITS)
    else:
        edits = STREAM_EDITS + NOT_JSON_EDITS
        plain = [dataclasses.replace(r, from_json=False) for r in bench.stream_records(len(edits) * 6, random.Random(1))]
        records = _mutated(plain, edits)
    _, rejected = _same_everywhere(records)
    assert rejected  # the bad dates are rejected, naming the field
    handed = _slow_calls(records)
    assert 0 < handed < len(records) // 3 + 1  # only edited records (some edits are common values) go slow


def test_envelopes_off_the_common_path_give_the_reference_results() -> None:
    bench = _benchmark()
    records = bench.elf_records(12, random.Random(2))
    envelopes: list[Any] = [
        None, {}, {"log_file_id": 2**64 - 1}, {"log_file_id": 2**70}, {"log_file_id": "", "log_file_sequence": None},
        {"log_file_id": "caf\u00e9"}, {7: "x"}, {"log_file_id": 1.5},
    ]  # fmt: skip
    records = [dataclasses.replace(r, envelope=envelopes[i % len(envelopes)]) for i, r in enumerate(records)]
    _same_everywhere(records)


def test_a_shape_beyond_the_builders_limits_is_built_by_the_python_program() -> None:
    payload = {f"FIELD_{i}": str(i) for i in range(600)}
    payload["TIMESTAMP_DERIVED"] = "2023-03-15T01:38:19.151Z"
    records = [Record("eventlogfile", "Login", dict(payload)) for _ in range(3)]
    with pytest.raises(batch._native.Unsupported):
        batch._native.Builder(*family_for("eventlogfile", "Login")[:1], "eventlogfile", "Login",
                              family_for("eventlogfile", "Login")[1], tuple(payload), True)  # fmt: skip
    _same_everywhere(records)


def test_sf_forwarder_native_0_turns_the_builder_off() -> None:
    code = "from forwarder.normalize import batch; print(batch.native_available(), batch._use_native)"
    for value, expected in (("0", "True False"), ("1", "True True")):
        env = {**os.environ, "SF_FORWARDER_NATIVE": value}
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert result.stdout.split() == expected.split()
