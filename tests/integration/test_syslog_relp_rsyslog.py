"""The syslog sink over RELP through a real rsyslogd with imrelp (plain and TLS): the same events arrive in
rsyslog's output exactly as over tcp://, an acknowledged batch is already in the file, a wrong CA or a
missing client certificate fails clearly, and a restarted rsyslog gets the retried batch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from rsyslog import Rsyslog
from test_syslog_rsyslog import SD_ID, TRICKY, expected_pri, tricky_events

from forwarder.errors import RetryableError
from sinks.syslog import SyslogConfig, SyslogSink

NOW = datetime(2026, 11, 26, 6, 0, 1, tzinfo=UTC)
# (rsyslog port, scheme, rsyslog input name)
TRANSPORTS = {"relp": ("RELP", "relp", "relp"), "relp_tls": ("RELP_TLS", "relp+tls", "relp-tls")}


@pytest.fixture(scope="module")
def rsyslog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rsyslog]:
    server = Rsyslog(tmp_path_factory.mktemp("rsyslog-relp"))
    server.start()
    yield server
    server.stop()


def client_tls(rsyslog: Rsyslog, **changes: Any) -> dict[str, Any]:
    # imrelp's TLS authenticates the client too (tests/integration/rsyslog.py), so a client certificate.
    tls = {
        "ca_file": rsyslog.pki.ca,
        "cert_file": rsyslog.pki.client_cert,
        "key_file": rsyslog.pki.client_key,
    }
    return {k: str(v) for k, v in (tls | changes).items() if v is not None}


def make_sink(rsyslog: Rsyslog, transport: str, **fields: Any) -> SyslogSink:
    port, scheme = {"tcp": ("TCP", "tcp"), **{k: v[:2] for k, v in TRANSPORTS.items()}}[transport]
    config: dict[str, Any] = {
        "type": "syslog",
        "name": f"rsyslog-{transport}",
        "address": rsyslog.address(port, scheme),
        "hostname": "fwd-test",
        "facility": "local4",
        "connect_timeout": 5,
        **({"tls": client_tls(rsyslog)} if scheme == "relp+tls" else {}),
        **fields,
    }
    return SyslogSink(SyslogConfig.model_validate(config), clock=lambda: NOW)


def records_of(rsyslog: Rsyslog, input_name: str, ids: set[str]) -> dict[str, dict[str, Any]]:
    """This input's records of ``ids`` by id, without the input name (the one field allowed to differ)."""
    found = {}
    for record in rsyslog.records():
        event_id = record.get("rfc5424-sd", {}).get(SD_ID, {}).get("id")
        if record["input"] == input_name and event_id in ids:
            found[event_id] = {k: v for k, v in record.items() if k != "input"}
    return found


async def send_and_close(sink: SyslogSink, events: list[dict[str, Any]]) -> None:
    await sink.send([sink.encode(e) for e in events])
    await sink.close()


@pytest.mark.parametrize("message", ["json", "cef"])
@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_events_arrive_exactly_as_over_tcp(rsyslog: Rsyslog, transport: str, message: str) -> None:
    events = tricky_events(3)
    ids = {e["event"]["id"] for e in events}
    await send_and_close(make_sink(rsyslog, "tcp", message=message), events)
    over_tcp = rsyslog.wait_for_ids(ids) and records_of(rsyslog, "tcp", ids)
    await send_and_close(make_sink(rsyslog, transport, message=message), events)
    # RELP acknowledged each message after rsyslog wrote it (Direct queue): no waiting for the file.
    over_relp = records_of(rsyslog, TRANSPORTS[transport][2], ids)
    assert over_relp == over_tcp
    for event in events:
        record = over_relp[event["event"]["id"]]
        assert record["pri"] == expected_pri(event)
        assert record["rfc5424-sd"][SD_ID]["user"] == TRICKY
        if message == "json":
            assert orjson.loads(record["msg"]) == event


async def test_line_breaks_and_large_messages_pass_unframed(rsyslog: Rsyslog) -> None:
    event = tricky_events(1)[0]
    event["user"]["name"] = "line1\nline2"
    event["salesforce"]["raw"]["pad"] = "x" * 30_000
    await send_and_close(make_sink(rsyslog, "relp_tls", max_message_bytes=60_000), [event])
    record = records_of(rsyslog, "relp-tls", {event["event"]["id"]})[event["event"]["id"]]
    assert record["rfc5424-sd"][SD_ID]["user"] == "line1\nline2"
    assert orjson.loads(record["msg"]) == event


async def test_a_wrong_ca_fails_the_handshake_and_sends_nothing(rsyslog: Rsyslog) -> None:
    sink = make_sink(rsyslog, "relp_tls", tls=client_tls(rsyslog, ca_file=rsyslog.pki.other_ca))
    event = tricky_events(1)[0]
    with pytest.raises(RetryableError, match=r"cannot open a RELP session .*CERTIFICATE_VERIFY_FAILED"):
        await sink.send([sink.encode(event)])
    with pytest.raises(RetryableError, match="CERTIFICATE_VERIFY_FAILED"):
        await sink.check()
    await sink.close()
    assert event["event"]["id"] not in rsyslog.output.read_text()


async def test_without_a_client_certificate_the_health_check_fails(rsyslog: Rsyslog) -> None:
    sink = make_sink(rsyslog, "relp_tls", tls=client_tls(rsyslog, cert_file=None, key_file=None))
    # Under TLS 1.3 imrelp refuses after our handshake finished: the open is never answered.
    with pytest.raises(RetryableError, match="cannot open a RELP session"):
        await sink.check()
    await sink.close()
    with_cert = make_sink(rsyslog, "relp_tls")
    await with_cert.check()  # the same server with our certificate: fine
    await with_cert.close()


async def test_a_restarted_rsyslog_gets_the_retried_batch(tmp_path: Path) -> None:
    server = Rsyslog(tmp_path)
    server.start()
    try:
        sink = make_sink(server, "relp")
        first, second = tricky_events(2)
        await sink.send([sink.encode(first)])
        server.stop()  # imrelp ends the session (serverclose or EOF): the sink knows before writing
        batch = [sink.encode(second)]
        with pytest.raises(RetryableError, match="cannot open a RELP session"):
            await sink.send(batch)
        server.start()
        await sink.send(batch)  # delivery's retry of the same batch
        await sink.close()
        assert set(records_of(server, "relp", {first["event"]["id"], second["event"]["id"]})) == {
            first["event"]["id"],
            second["event"]["id"],
        }
    finally:
        server.stop()
