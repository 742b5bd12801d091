"""Normalisation throughput: ELF Login rows and LoginEventStream payloads, ours vs a flat pydantic model.

Baseline (issue 5): ``Model.model_validate`` of the raw record into a flat pydantic model with one field
per column, i.e. the least a pydantic-based forwarder pays to merely type-check a record. Ours is
``normalize_batch`` over batches of ``BATCH`` records, the API the pipeline calls (``forwarder/ingest.py``
normalises whole batches: an ELF file's rows, a channel's events), with ECS mapping, id hash, codes, raw
copy, and the documents freed inside the timing; reported per event. ``normalize_doc`` per record is an
extra line without a target. Interleaved rounds, medians; the last line is the JSON array of DESIGN.md's
benchmark convention.
"""

from __future__ import annotations

import json
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, create_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forwarder.ingest import collector_held
from forwarder.normalize import Rejected, normalize, normalize_doc
from forwarder.normalize.batch import normalize_batch
from forwarder.records import Record
from forwarder.salesforce.logfile import shared_header

N = 20_000
ROUNDS = 5
TARGET = 0.5
STATUSES = ["LOGIN_NO_ERROR"] * 9 + ["LOGIN_ERROR_INVALID_PASSWORD"]


def elf_login_rows(n: int, rng: random.Random) -> list[dict[str, Any]]:
    """Rows shaped like the real 2022 Login column order (facts A6), typed as the ELF source types them."""
    rows = []
    for i in range(n):
        ms = rng.randrange(1000)
        sec = i % 60
        rows.append({
            "EVENT_TYPE": "Login", "TIMESTAMP": f"20261126{10 + i % 10:02d}{i % 60:02d}{sec:02d}.{ms:03d}",
            "REQUEST_ID": f"4lGJ1R0ZSWVXwFl1c{i:05d}", "ORGANIZATION_ID": "00D5j000000VI3n",
            "USER_ID": f"0055j000000u{i % 999:03d}", "RUN_TIME": rng.randrange(50, 400),
            "CPU_TIME": rng.randrange(10, 100), "URI": "/index.jsp", "SESSION_KEY": "",
            "LOGIN_KEY": f"NK2oPJrJze8t{i:04d}", "USER_TYPE": "Standard", "REQUEST_STATUS": "Success",
            "DB_TOTAL_TIME": rng.randrange(10**7, 10**8), "LOGIN_TYPE": rng.choice("Aiz5"),
            "BROWSER_TYPE": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0",
            "API_TYPE": "", "API_VERSION": "9998.0", "USER_NAME": f"user{i % 999}@example.com",
            "TLS_PROTOCOL": "TLSv1.2", "CIPHER_SUITE": "ECDHE-RSA-AES256-GCM-SHA384",
            "AUTHENTICATION_METHOD_REFERENCE": "",
            "TIMESTAMP_DERIVED": f"2026-11-26T{10 + i % 10:02d}:{i % 60:02d}:{sec:02d}.{ms:03d}Z",
            "USER_ID_DERIVED": f"0055j000000u{i % 999:03d}AAQ", "CLIENT_IP": f"203.0.113.{i % 250}",
            "URI_ID_DERIVED": "", "LOGIN_STATUS": rng.choice(STATUSES),
            "SOURCE_IP": f"203.0.113.{i % 250}",
        })  # fmt: skip
    return rows


def stream_payloads(n: int, rng: random.Random) -> list[dict[str, Any]]:
    """LoginEventStream payloads with the field set of a real capture (facts B2/B3)."""
    out = []
    for i in range(n):
        out.append({  # noqa: PERF401 - one literal per row reads better than a comprehension
            "EventDate": f"2026-11-26T10:{i % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z", "AuthServiceId": None,
            "CountryIso": "IN", "Platform": "Mac OSX", "EvaluationTime": 0.0,
            "CipherSuite": "ECDHE-RSA-AES256-GCM-SHA384", "PostalCode": "395007", "ClientVersion": "N/A",
            "LoginGeoId": "04F5j00000FadrI", "LoginUrl": "login.salesforce.com",
            "LoginHistoryId": "0Ya5j00000GLxCdCAL", "CreatedById": "0055j000000q9s7AAA",
            "SessionKey": "vMASKIU6AxEr+Op5", "ApiType": "N/A", "AuthMethodReference": None,
            "LoginType": "Remote Access 2.0", "PolicyOutcome": None,
            "Status": "Success" if rng.random() < 0.9 else "Invalid Password", "AdditionalInfo": "{}",
            "ApiVersion": "N/A", "EventIdentifier": f"06af6d92-1167-467d-a826-{i:012d}",
            "RelatedEventIdentifier": None, "LoginLatitude": 21.1888, "City": "Surat", "Subdivision": "GJ",
            "SourceIp": f"198.51.100.{i % 250}", "Username": f"user{i % 999}@example.com",
            "UserId": f"0055j000000u{i % 999:03d}AAQ", "CreatedDate": "2026-11-26T10:00:30Z", "Country": "IN",
            "LoginLongitude": 72.8293, "TlsProtocol": "TLS 1.2", "LoginKey": "o3vhFaSRBb0OzpCl",
            "Application": "Browser", "UserType": "Standard", "PolicyId": None, "HttpMethod": "POST",
            "SessionLevel": "STANDARD", "Browser": "Chrome 120",
        })  # fmt: skip
    return out


def flat_model(sample: dict[str, Any]) -> type[BaseModel]:
    """One optional field per column, typed like the sample value (str/int/float), like a generated model."""
    fields: dict[str, Any] = {}
    for key, value in sample.items():
        kind = type(value) if value is not None else str
        fields[key.lstrip("_") or "field"] = (kind | None, None)
    model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        "Flat", __config__=ConfigDict(extra="ignore"), **fields
    )
    return model


BATCH = 1_000  # the pipeline's batches are 1,000-2,000 records
INGESTED = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def _seconds(fn: Callable[[Any], Any], items: list[Any]) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return time.perf_counter() - start


def _batch_seconds(records: list[Record]) -> float:
    start = time.perf_counter()
    # As ``ingest.emit`` runs it: the collector held from normalisation until the documents are freed
    # (freed inside the timing, as the pipeline frees them after the journal). Without the hold, the
    # first allocation after ``normalize_batch`` returns scans the whole live batch, which the pipeline
    # never pays (0.6 us an ELF row, 1.0 us a stream event, measured).
    with collector_held():
        events, rejected = normalize_batch(records, ingested=INGESTED)
        assert not rejected
        del events
    return time.perf_counter() - start


def _per_record(fn: Callable[[Record], Any]) -> Callable[[list[Record]], float]:
    return lambda records: _seconds(fn, records)


def document_floor(records: list[Record]) -> Callable[[list[Record]], float]:
    """What building our document's containers costs before any work: a generated function made of dict
    and list literals only, shaped like the first record's document, its leaves taken from the payload where
    a payload value equals them (else constants), ``salesforce.raw`` the payload. No checks, conversions,
    hashing or hooks: the least any code producing this document pays per event, in the same batches."""
    (doc,), _ = normalize_batch(records[:1], ingested=INGESTED)
    values = list(records[0].payload.values())
    constants: list[Any] = []

    def literal(node: Any) -> str:
        if node is records[0].payload:
            return "payload"
        if node.__class__ is dict:
            return "{" + ", ".join(f"{key!r}: {literal(value)}" for key, value in node.items()) + "}"
        if node.__class__ is list:
            return "[" + ", ".join(literal(item) for item in node) + "]"
        for index, value in enumerate(values):
            if value.__class__ is node.__class__ and value == node:
                return f"a{index}"
        constants.append(node)
        return f"c[{len(constants) - 1}]"

    body = literal(doc)
    source = (
        "def build(records, out):\n    for record in records:\n        payload = record.payload\n"
        f"        {''.join(f'a{i}, ' for i in range(len(values)))}= payload.values()\n"
        f"        out.append({body})\n"
    )
    namespace: dict[str, Any] = {"c": constants}
    exec(compile(source, "<document floor>", "exec"), namespace)  # built from our own document
    build = namespace["build"]

    def seconds(batch: list[Record]) -> float:
        start = time.perf_counter()
        with collector_held():  # as _batch_seconds
            out: list[Any] = []
            build(batch, out)
            del out
        return time.perf_counter() - start

    return seconds


def measure(
    name: str,
    records: list[Record],
    ours: Callable[[list[Record]], float],
    target: float | None = TARGET,
    api: str = "normalize_batch",
) -> dict[str, Any]:
    model = flat_model(records[0].payload)
    flat_inputs = [r.payload for r in records]
    for record in records[:100]:
        assert not isinstance(normalize_doc(record), Rejected)
    ours_runs, base_runs = [], []
    for _ in range(ROUNDS):
        # Interleaved per batch: a noisy neighbour (2 shared cores) hits both sides alike. The side that
        # goes first reads the batch's payloads from memory and leaves them in cache for the other, so the
        # order alternates from batch to batch.
        ours_s = base_s = 0.0
        for number, start in enumerate(range(0, len(records), BATCH)):
            batch, flat = records[start : start + BATCH], flat_inputs[start : start + BATCH]
            if number % 2:
                base_s += _seconds(model.model_validate, flat)
                ours_s += ours(batch)
            else:
                ours_s += ours(batch)
                base_s += _seconds(model.model_validate, flat)
        ours_runs.append(len(records) / ours_s)
        base_runs.append(len(records) / base_s)
    ours_rate, base_rate = statistics.median(ours_runs), statistics.median(base_runs)
    return {
        "name": name, "unit": "events/s", "ours": round(ours_rate), "baseline": round(base_rate),
        "ratio": round(ours_rate / base_rate, 3), "target": target,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "api": api, "batch": BATCH if api == "normalize_batch" else None, "events": len(records),
        "rounds": ROUNDS,
    }  # fmt: skip


#: What the EventLogFile source puts beside every row of a file (one mapping shared by the file's rows).
ELF_ENVELOPE = {"log_file_id": "0AT5j000000001", "log_file_date": "2026-11-26T10:00:00.000+0000",
                "log_file_interval": "Hourly", "log_file_sequence": 1}  # fmt: skip


def elf_records(n: int, rng: random.Random) -> list[Record]:
    """Records as ``sources/eventlogfile.py`` makes them: the file's header tuple as ``fields``."""
    rows = elf_login_rows(n, rng)
    header = shared_header(list(rows[0]))
    return [Record("eventlogfile", "Login", row, envelope=ELF_ENVELOPE, fields=header) for row in rows]


def stream_records(n: int, rng: random.Random) -> list[Record]:
    """Records as ``sources/streaming.py`` makes them: the payload decoded by orjson, replay id beside it."""
    return [
        Record("streaming", "LoginEventStream", orjson.loads(orjson.dumps(payload)), from_json=True,
               envelope={"replay_id": 1000 + i, "channel": "/event/LoginEventStream"})
        for i, payload in enumerate(stream_payloads(n, rng))
    ]  # fmt: skip


def main() -> None:
    rng = random.Random(5)
    elf = elf_records(N, rng)
    stream = stream_records(N, rng)
    one_by_one = _per_record(normalize_doc)
    results = [
        measure("normalize_elf_login", elf, _batch_seconds),
        measure("normalize_login_event_stream", stream, _batch_seconds),
        # informational: one record at a time, and the pydantic-validated SecurityEvent
        measure("normalize_doc_elf_login", elf, one_by_one, None, "normalize_doc"),
        measure("normalize_doc_login_event_stream", stream, one_by_one, None, "normalize_doc"),
        measure("normalize_model_elf_login", elf[: N // 4], _per_record(normalize), None, "normalize"),
        # informational: the same documents built from bare literals (docs/normalisation.md, the ceiling)
        measure("document_floor_elf_login", elf, document_floor(elf), None, "literals only"),
        measure("document_floor_login_event_stream", stream, document_floor(stream), None, "literals only"),
    ]
    for result in results:
        print(
            f"{result['name']}: ours {result['ours']}/s, baseline {result['baseline']}/s, "
            f"ratio {result['ratio']}"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
