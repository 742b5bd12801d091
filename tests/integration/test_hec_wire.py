"""SplunkHecSink against the HEC receiver: what goes on the wire, HEC-specific codes, TLS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from forwarder.errors import AuthenticationError, PermanentError, RetryableError
from forwarder.settings import TlsConfig
from forwarder.testing.receivers import Fault, sample_event
from forwarder.testing.receivers.certs import make_pki
from forwarder.testing.receivers.hec import DEFAULT_TOKEN, HecReceiver, hec_fault
from sinks.splunk_hec import PROCESS_CHANNEL, SplunkHecConfig, SplunkHecSink


def _sink(url: str, **kw: object) -> SplunkHecSink:
    config = {"type": "splunk_hec", "name": "hec", "url": url, "token": DEFAULT_TOKEN, "timeout": 5, **kw}
    return SplunkHecSink(SplunkHecConfig.model_validate(config))


@pytest.fixture
async def receiver() -> AsyncIterator[HecReceiver]:
    async with HecReceiver(allowed_indexes={"salesforce"}) as started:
        yield started


async def test_sends_gzipped_concatenated_envelopes_with_token_and_channel(receiver: HecReceiver) -> None:
    sink = _sink(receiver.url, index="salesforce")
    batch = [sink.encode(sample_event(i)) for i in range(3)]
    await sink.send(batch)
    await sink.close()
    (request,) = receiver.requests
    assert request.path == "/services/collector/event"
    assert request.headers["Authorization"] == f"Splunk {DEFAULT_TOKEN}"
    assert request.headers["X-Splunk-Request-Channel"] == PROCESS_CHANNEL
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.body_bytes == len(b"\n".join(batch))  # no trailing newline (vector#8459)
    assert request.wire_bytes < request.body_bytes
    assert [e["fields"]["event_id"] for e in receiver.events] == [
        "evt-00000000",
        "evt-00000001",
        "evt-00000002",
    ]
    assert receiver.events[0]["index"] == "salesforce"


async def test_uncompressed_mode_sends_plain_json(receiver: HecReceiver) -> None:
    sink = _sink(receiver.url, compression=False)
    await sink.send([sink.encode(sample_event(1))])
    await sink.close()
    assert "Content-Encoding" not in receiver.requests[0].headers
    assert receiver.unique_ids() == {"evt-00000001"}


async def test_wrong_index_is_permanent_and_names_the_event(receiver: HecReceiver) -> None:
    sink = _sink(receiver.url, index="not-allowed")
    with pytest.raises(PermanentError, match=r"Incorrect index \(code 7\) at event 0"):
        await sink.send([sink.encode(sample_event(1))])
    await sink.close()
    assert receiver.unique_ids() == set()


async def test_invalid_channel_switches_to_a_new_channel_and_retries(receiver: HecReceiver) -> None:
    sink = _sink(receiver.url)
    first = sink.channel
    receiver.faults.next(hec_fault(400, 11, "Invalid data channel"))
    with pytest.raises(RetryableError) as caught:
        await sink.send([sink.encode(sample_event(1))])
    assert caught.value.retry_after == 0
    assert sink.channel != first
    await sink.send([sink.encode(sample_event(1))])
    assert receiver.requests[-1].headers["X-Splunk-Request-Channel"] == sink.channel
    await sink.close()


async def test_timeout_of_a_stalled_receiver_is_retryable(receiver: HecReceiver) -> None:
    sink = _sink(receiver.url, timeout=0.2)
    receiver.faults.next(hec_fault(200, 0, "Success", delay=2))
    with pytest.raises(RetryableError, match="TimeoutError"):
        await sink.send([sink.encode(sample_event(1))])
    await sink.close()


async def test_connection_reset_is_retryable(receiver: HecReceiver) -> None:
    sink = _sink(receiver.url)
    receiver.faults.next(hec_fault(200, 0, "Success", reset=True))
    with pytest.raises(RetryableError):
        await sink.send([sink.encode(sample_event(1))])
    await sink.close()


async def test_unhealthy_hec_fails_the_health_check(receiver: HecReceiver) -> None:
    sink = _sink(receiver.url)
    await sink.check()
    receiver.healthy = False
    with pytest.raises(RetryableError, match="503"):
        await sink.check()
    await sink.close()


async def test_secrets_never_appear_in_errors(receiver: HecReceiver) -> None:
    receiver.tokens = {"other"}
    sink = _sink(receiver.url)
    with pytest.raises(AuthenticationError) as caught:
        await sink.send([sink.encode(sample_event(1))])
    await sink.close()
    assert DEFAULT_TOKEN not in str(caught.value)
    assert "Invalid token" in str(caught.value)


async def test_tls_with_the_right_ca_and_mutual_tls(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    async with HecReceiver(ssl_context=pki.server_context(require_client_cert=True)) as receiver:
        tls = TlsConfig(ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key)
        sink = SplunkHecSink(
            SplunkHecConfig(
                type="splunk_hec", name="hec", url=receiver.url, token=SecretStr(DEFAULT_TOKEN), tls=tls
            )
        )
        await sink.send([sink.encode(sample_event(1))])
        await sink.close()
        assert receiver.unique_ids() == {"evt-00000001"}


async def test_tls_with_an_unknown_ca_is_refused_not_silently_sent(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    async with HecReceiver(ssl_context=pki.server_context()) as receiver:
        sink = _sink(receiver.url)  # system CAs only: the test CA is unknown
        with pytest.raises(RetryableError, match=r"(?i)certificate"):
            await sink.send([sink.encode(sample_event(1))])
        await sink.close()
        assert receiver.unique_ids() == set()


async def test_mutual_tls_without_a_client_certificate_delivers_nothing(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    async with HecReceiver(ssl_context=pki.server_context(require_client_cert=True)) as receiver:
        sink = _sink(receiver.url, tls={"ca_file": str(pki.ca)})
        with pytest.raises(RetryableError):
            await sink.send([sink.encode(sample_event(1))])
        await sink.close()
        assert receiver.unique_ids() == set()


async def test_retry_after_header_is_read_case_insensitively(receiver: HecReceiver) -> None:
    sink = _sink(receiver.url)
    receiver.faults.next(
        Fault(status=503, body=b'{"text":"Server is busy","code":9}', headers={"retry-after": "5"})
    )
    with pytest.raises(RetryableError) as caught:
        await sink.send([sink.encode(sample_event(1))])
    await sink.close()
    assert caught.value.retry_after == 5
