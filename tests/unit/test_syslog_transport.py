"""The syslog sink over real loopback sockets against the receivers module: one write per batch, framing,
UDP datagrams, failures classified as retryable, and a reconnect on the next send after the peer went away."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from forwarder import metrics
from forwarder.errors import RetryableError
from forwarder.testing.receivers import sample_event
from forwarder.testing.receivers.syslog import SyslogReceiver, event_id
from sinks.syslog import SyslogConfig, SyslogSink


def make_sink(address: str, **fields: Any) -> SyslogSink:
    return SyslogSink(
        SyslogConfig.model_validate(
            {"type": "syslog", "name": "t", "address": address, "connect_timeout": 2, **fields}
        )
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("framing", ["octet_counting", "lf"])
async def test_delivers_a_batch_over_tcp_in_either_framing(framing: str) -> None:
    async with SyslogReceiver(udp_port=None) as receiver:
        sink = make_sink(receiver.tcp_address, framing=framing)
        await sink.send([sink.encode(sample_event(i)) for i in range(20)])
        messages = await receiver.wait_for(20)
        await sink.close()
    assert [m.msgid for m in messages] == ["salesforce.login"] * 20
    assert [event_id(m) for m in messages] == [f"evt-{i:08d}" for i in range(20)]
    assert receiver.connections == 1


async def test_delivers_one_datagram_per_event_over_udp() -> None:
    async with SyslogReceiver() as receiver:
        sink = make_sink(receiver.udp_address, message="cef")
        await sink.send([sink.encode(sample_event(i)) for i in range(5)])
        messages = await receiver.wait_for(5)
        await sink.close()
    assert {m.transport for m in messages} == {"udp"}
    assert {event_id(m) for m in messages} == {f"evt-{i:08d}" for i in range(5)}
    assert all(m.msg.startswith("CEF:0|Salesforce|sf-forwarder|") for m in messages)


async def test_refused_connection_is_retryable_and_the_next_send_connects() -> None:
    port = free_port()
    sink = make_sink(f"tcp://127.0.0.1:{port}")
    batch = [sink.encode(sample_event(1))]
    failed = metrics.syslog_connections.labels("t", "failed")._value.get()
    with pytest.raises(RetryableError):
        await sink.send(batch)
    assert metrics.syslog_connections.labels("t", "failed")._value.get() == failed + 1
    async with SyslogReceiver(tcp_port=port, udp_port=None) as receiver:
        await sink.send(batch)  # the same batch, retried by delivery: it now arrives
        await receiver.wait_for(1)
        await sink.close()


async def test_reconnects_when_the_receiver_dropped_the_connection() -> None:
    async with SyslogReceiver(udp_port=None) as receiver:
        sink = make_sink(receiver.tcp_address)
        await sink.send([sink.encode(sample_event(1))])
        await receiver.wait_for(1)
        await receiver.drop_connections()
        # The closed peer is noticed before writing: the batch goes out on a new connection, not into
        # the old socket where TCP would have accepted it and lost it.
        await sink.send([sink.encode(sample_event(2))])
        await receiver.wait_for(2)
        await sink.close()
    assert receiver.unique_ids() == {"evt-00000001", "evt-00000002"}
    assert receiver.connections == 2


async def test_receiver_gone_mid_stream_is_retryable_not_silent() -> None:
    receiver = await SyslogReceiver(udp_port=None).start()
    sink = make_sink(receiver.tcp_address)
    await sink.send([sink.encode(sample_event(1))])
    await receiver.wait_for(1)
    await receiver.stop()
    with pytest.raises(RetryableError):
        await sink.send([sink.encode(sample_event(2))])
    await sink.close()


async def test_check_raises_when_nobody_listens_and_passes_when_up() -> None:
    sink = make_sink(f"tcp://127.0.0.1:{free_port()}")
    with pytest.raises(RetryableError):
        await sink.check()
    async with SyslogReceiver(udp_port=None) as receiver:
        await make_sink(receiver.tcp_address).check()
        assert receiver.connections == 1


async def test_udp_port_unreachable_surfaces_on_a_later_send() -> None:
    sink = make_sink(f"udp://127.0.0.1:{free_port()}")
    await sink.send([sink.encode(sample_event(1))])  # UDP cannot know yet: best effort by nature

    async def send_until_refused() -> None:
        for _ in range(50):  # the ICMP error arrives asynchronously; a later send reports it
            await sink.send([sink.encode(sample_event(2))])
            await sink.check()

    with pytest.raises(RetryableError):
        await send_until_refused()
    await sink.close()


async def test_close_is_idempotent_and_a_closed_sink_reconnects_on_send() -> None:
    async with SyslogReceiver(udp_port=None) as receiver:
        sink = make_sink(receiver.tcp_address)
        await sink.send([sink.encode(sample_event(1))])
        await sink.close()
        await sink.close()
        await sink.send([sink.encode(sample_event(2))])
        await receiver.wait_for(2)
        await sink.close()


async def test_concurrent_sends_share_one_connection_without_interleaving() -> None:
    async with SyslogReceiver(udp_port=None) as receiver:
        sink = make_sink(receiver.tcp_address)
        batches = [[sink.encode(sample_event(b * 100 + i, pad=3000)) for i in range(100)] for b in range(4)]
        async with asyncio.TaskGroup() as group:
            for batch in batches:
                group.create_task(sink.send(batch))
        messages = await receiver.wait_for(400)
        await sink.close()
    assert receiver.connections == 1
    assert receiver.unique_ids() == {f"evt-{n:08d}" for n in range(400)}
    assert all(m.msgid == "salesforce.login" for m in messages)  # every frame parsed whole
