"""The same activity seen on the stream, as a storage object, in LoginHistory and in an ELF row normalises
to the same answer for "who logged in from where, and did it work?" (simulator traffic, issue 5)."""

from __future__ import annotations

from typing import Any

import pytest

from forwarder.events import get_path
from forwarder.normalize import Rejected, normalize_doc
from forwarder.records import Record
from forwarder.testing.simulator.traffic import Activity, Traffic, iter_all

SAME = ("event.dataset", "event.outcome", "user.id", "source.ip", "@timestamp", "salesforce.login_type")


def _forms(activity: Activity) -> dict[str, Record]:
    """Every Record shape our sources would emit for this activity."""
    forms: dict[str, Record] = {}
    if activity.payload is not None and activity.channel is not None:
        channel = activity.channel
        envelope = {"replay_id": 1, "channel": channel}
        forms[channel] = Record("streaming", channel.rsplit("/", 1)[-1], dict(activity.payload), envelope=envelope)
    for name, fields in activity.objects.items():
        source = "setupaudittrail" if name == "SetupAuditTrail" else "query"
        forms[name] = Record(source, name, dict(fields))
    for event_type, row in activity.elf.items():
        forms["elf:" + event_type] = Record("eventlogfile", event_type, dict(row))
    return forms


def _docs(activity: Activity) -> dict[str, dict[str, Any]]:
    docs = {}
    for name, record in _forms(activity).items():
        doc = normalize_doc(record, raw="none")
        assert not isinstance(doc, Rejected), (name, doc)
        docs[name] = doc
    return docs


@pytest.mark.parametrize(
    "make",
    [
        lambda t: t.login(),
        lambda t: t.login(status="Invalid Password"),
        lambda t: t.login(api=True, login_type="Remote Access 2.0"),
    ],
    ids=["success", "failure", "api"],
)
def test_login_reads_the_same_from_stream_object_history_and_elf(make: Any) -> None:
    docs = _docs(make(Traffic(11)))
    assert set(docs) >= {"/event/LoginEventStream", "LoginEvent", "LoginHistory", "elf:Login"}
    for field in SAME:
        seen = {name: get_path(doc, field) for name, doc in docs.items()}
        assert len(set(seen.values())) == 1, (field, seen)
    names = {get_path(doc, "user.name") for doc in docs.values()} - {None}  # LoginHistory has no username
    assert len(names) == 1


def test_failed_login_reason_is_present_in_every_form() -> None:
    docs = _docs(Traffic(3).login(status="Invalid Password"))
    assert all(get_path(doc, "event.outcome") == "failure" for doc in docs.values())
    assert all(get_path(doc, "event.reason") for doc in docs.values())


def test_every_simulated_activity_normalises_in_every_form() -> None:
    activities = list(iter_all(Traffic(5), "attacks", count=150))
    assert len(activities) > 150
    datasets = set()
    for activity in activities:
        for doc in _docs(activity).values():
            datasets.add(doc["event"]["dataset"])
    assert {"salesforce.login", "salesforce.setup_audit_trail", "salesforce.report"} <= datasets


def test_stream_and_storage_object_of_one_event_share_id_and_dataset() -> None:
    for activity in Traffic(9).baseline(60):
        docs = _docs(activity)
        ids = {
            n: d["event"]["id"]
            for n, d in docs.items()
            if n.startswith("/event/") or n.endswith(("Event", "Store"))
        }
        if len(ids) > 1:
            assert len(set(ids.values())) == 1, ids
