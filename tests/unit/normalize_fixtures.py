"""Turn every security record under shared/fixtures/salesforce/ into the ``Record`` shape our sources emit.

The fixtures come in their publishers' wrappings (AppOmni JSON, Elastic/Beats JSON lines, raw ELF CSV);
each loader undoes one wrapping. Files that hold no security record (OAuth/REST plumbing, EventLogFile
metadata, describe output) are listed in ``NOT_RECORDS`` with the reason.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from forwarder.normalize import batch
from forwarder.records import Record
from forwarder.testing.fixtures import SHARED_FIXTURES

#: shared/ sits beside the working tree (and beside CI's clone of it); SF_FIXTURES overrides.
FIXTURES = SHARED_FIXTURES

NOT_RECORDS = {
    "SOURCES.md": "provenance notes",
    "elf/logstash-input-sfdc_elf/LICENSE.MIT-LICENSE.txt": "license text",
    "elf/logstash-input-sfdc_elf/create_event_ELF_list1.json": "EventLogFile query result (metadata)",
    "elf/logstash-input-sfdc_elf/eventlogfile_describe.json": "sobject describe",
    "elf/logstash-input-sfdc_elf/eventlogfile_list.json": "EventLogFile query result (metadata)",
    "rest/compiled-rest-oauth-examples.json": "REST/OAuth protocol snippets",
    "rest/logstash-input-sfdc_elf/auth_success_response.json": "OAuth token response",
    "rest/logstash-input-sfdc_elf/org_query_response.json": "Organization query result",
    "rest/newrelic-exporter/sample_limits.json": "limits response",
    "rest/newrelic-exporter/sample_log_records.json": "EventLogFile query result (metadata)",
}

_FIMA_KINDS = {"login": "LoginEventStream", "logout": "LogoutEventStream"}


def _json_lines(path: Path) -> Iterator[dict[str, Any]]:
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            yield row.get("json", row) if isinstance(row.get("json"), dict) else row


def _appomni_stream(path: Path) -> Iterator[Record]:
    message = json.loads(path.read_text())
    channel = message["channel"]
    kind = channel.rsplit("/", 1)[-1]
    payload = dict(message["data"]["payload"])
    if kind == "IdentityVerificationEvent":  # storage-only object: queried, not streamed (facts B1)
        yield Record("query", kind, payload)
        return
    envelope = {"replay_id": message["data"]["event"].get("replayId"), "channel": channel}
    yield Record("streaming", kind, payload, envelope=envelope, from_json=True)


def _bayeux_examples(path: Path) -> Iterator[Record]:
    for example in json.loads(path.read_text())["examples"]:
        messages = example["message"] if isinstance(example["message"], list) else [example["message"]]
        for message in messages:
            if isinstance(message.get("data"), dict) and "payload" in message["data"]:
                kind = message["channel"].rsplit("/", 1)[-1]
                payload = dict(message["data"]["payload"])
                envelope = {"replay_id": message["data"]["event"]["replayId"], "channel": message["channel"]}
                yield Record("streaming", kind, payload, envelope=envelope, from_json=True)


def _appomni_audit(path: Path) -> Record:
    """AppOmni flattened SetupAuditTrail rows back to the SOQL record shape (facts C)."""
    row = json.loads(path.read_text())
    payload = {
        "Id": row["record_id"], "Action": row["action"], "Section": row["section"], "Display": row["display"],
        "DelegateUser": row["delegate_user"], "CreatedById": row["sfdc_created_by_id"],
        "CreatedBy": {"Username": row["sfdc_created_by_username"], "Name": row["sfdc_created_by_name"]},
        "CreatedDate": row["sfdc_created_date"],
    }  # fmt: skip
    return Record("setupaudittrail", "SetupAuditTrail", payload)


def _elf_row(row: dict[str, Any], path: Path) -> Record:
    return Record("eventlogfile", str(row["EVENT_TYPE"]), dict(row), envelope=_ELF_ENVELOPE)


#: What the EventLogFile source puts beside each row (one mapping for a file's rows; the date left empty).
_ELF_ENVELOPE = {"log_file_id": "0AT000000000001AAA", "log_file_date": "", "log_file_interval": "Hourly",
                 "log_file_sequence": 1}  # fmt: skip


def _csv_rows(path: Path) -> Iterator[Record]:
    reader = csv.DictReader(io.StringIO(path.read_text(), newline=""))
    for row in reader:
        yield _elf_row(row, path)


def load(relative: str) -> list[Record]:
    """The records in one fixture file, in file order."""
    path = FIXTURES / relative
    if relative.startswith("streaming/appomni/"):
        return list(_appomni_stream(path))
    if relative == "streaming/compiled-bayeux-examples.json":
        return list(_bayeux_examples(path))
    if relative.startswith("streaming/elastic/"):
        kind = _FIMA_KINDS["logout" if "logout" in relative else "login"]
        return [Record("streaming", kind, row) for row in _json_lines(path)]
    if relative.startswith("rest/elastic/"):
        kind = "LogoutEvent" if "logout" in relative else "LoginEvent"
        return [Record("query", kind, row) for row in _json_lines(path)]
    if relative.startswith("setupaudittrail/appomni/"):
        return [_appomni_audit(path)]
    if relative.startswith("setupaudittrail/elastic/"):
        return [Record("setupaudittrail", "SetupAuditTrail", row) for row in _json_lines(path)]
    if relative.endswith(".csv"):
        return list(_csv_rows(path))
    if relative.startswith("elf/appomni/"):
        return [_elf_row(json.loads(path.read_text()), path)]
    if relative.startswith("elf/"):
        return [_elf_row(row, path) for row in _json_lines(path)]
    raise AssertionError(f"no loader for {relative}")


def record_files() -> list[str]:
    """Every fixture that holds records (Elastic ``*-expected.json`` outputs excluded)."""
    found = []
    for path in sorted(FIXTURES.rglob("*")):
        relative = path.relative_to(FIXTURES).as_posix()
        if path.is_file() and relative not in NOT_RECORDS and not relative.endswith("-expected.json"):
            found.append(relative)
    return found


def elastic_pairs() -> list[str]:
    """Elastic pipeline-test inputs that have an ``-expected.json`` beside them."""
    return sorted(
        p.relative_to(FIXTURES).as_posix().removesuffix("-expected.json")
        for p in FIXTURES.rglob("*-expected.json")
    )


@contextmanager
def shape_builder(kind: str) -> Iterator[None]:
    """``normalize_batch`` with the compiled builder ("native") or the Python shape programs ("python").
    Without the compiled module "native" is skipped, or fails where SF_FORWARDER_REQUIRE_NATIVE=1 (CI)."""
    if kind == "native" and not batch.native_available():
        if os.environ.get("SF_FORWARDER_REQUIRE_NATIVE") == "1":
            pytest.fail("forwarder.normalize._native is not built (SF_FORWARDER_REQUIRE_NATIVE=1)")
        pytest.skip("the compiled builder is not built (no C compiler at install)")
    previous = batch._use_native
    batch.use_native(kind == "native")
    try:
        yield
    finally:
        batch.use_native(previous)
