"""StreamingSource against the simulator's CometD server: nothing missing, nothing duplicated, whatever breaks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from forwarder.errors import RetryableError
from forwarder.records import Position, Record
from forwarder.sources.streaming import StreamingConfig, StreamingSource
from forwarder.testing.clock import ManualClock
from forwarder.testing.simulator.cometd import CometdServer, EventBus, serve

LOGIN, LOGOUT = "/event/LoginEventStream", "/event/LogoutEventStream"


@dataclass
class Session:
    instance_url: str
    access_token: str


class StubAuth:
    """Stand-in for forwarder.salesforce.auth.Authenticator: numbered tokens, revocable."""

    def __init__(self) -> None:
        self.url = ""
        self.number = 1
        self.valid = {"tok-1"}
        self.invalidated: list[str] = []
        self.sessions = 0

    @property
    def current(self) -> str:
        return f"tok-{self.number}"

    async def session(self) -> Session:
        self.sessions += 1
        return Session(self.url, self.current)

    def invalidate(self, access_token: str) -> None:
        self.invalidated.append(access_token)
        if access_token == self.current:
            self.number += 1
            self.valid.add(self.current)

    def revoke(self) -> None:
        self.valid.discard(self.current)


class Journal:
    """Collects what ``emit`` made durable; ``gate`` holds emit to test flow control."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.position: Position | None = None
        self.gate: asyncio.Event | None = None
        self.emitting = asyncio.Event()
        self._changed = asyncio.Event()

    async def emit(self, records: Sequence[Record], position: Position | None) -> None:
        self.emitting.set()
        if self.gate is not None:
            await self.gate.wait()
        self.records.extend(records)
        self.position = position
        self._changed.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.records) < count:
                self._changed.clear()
                await self._changed.wait()

    def ids(self, channel: str = LOGIN) -> list[int]:
        return [r.envelope["replay_id"] for r in self.records if r.envelope and r.envelope["channel"] == channel]


def Clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 1, tzinfo=UTC))


@dataclass
class Org:
    server: CometdServer
    bus: EventBus
    auth: StubAuth
    clock: ManualClock
    http: aiohttp.ClientSession

    def publish(self, n: int, channel: str = LOGIN) -> list[int]:
        return [
            self.bus.publish(channel, {"EventIdentifier": f"e{i}", "Username": "a@b.c"}) for i in range(n)
        ]

    def source(self, channels: list[str] | None = None, replay: str = "latest") -> StreamingSource:
        config = StreamingConfig(channels=channels or [LOGIN], replay=replay)  # type: ignore[arg-type]
        return StreamingSource(config, self.auth, "62.0", self.http, backoff=lambda _: 0.0)

    def requests(self, channel: str) -> list[dict[str, Any]]:
        return [m for r in self.server.requests for m in r if m.get("channel") == channel]


@pytest.fixture
async def org() -> AsyncIterator[Org]:
    auth, clock = StubAuth(), Clock()
    bus = EventBus(clock=clock)
    server = CometdServer(bus, lambda t: t in auth.valid, connect_timeout=0.3)
    async with serve(server) as url, aiohttp.ClientSession() as http:
        auth.url = url
        yield Org(server, bus, auth, clock, http)


@contextlib.asynccontextmanager
async def running(
    source: StreamingSource, journal: Journal, position: Position | None = None
) -> AsyncIterator[None]:
    task = asyncio.create_task(source.run(position, journal.emit))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert not task.done() or task.cancelled() or task.exception() is None


async def until(condition: Callable[[], bool], server: CometdServer) -> None:
    """Wait, request by request, until ``condition`` holds (no sleeps: every server request re-checks)."""
    changed = asyncio.Event()
    server.on_request = lambda _: changed.set()
    try:
        async with asyncio.timeout(10):
            while not condition():
                changed.clear()
                await changed.wait()
    finally:
        server.on_request = None


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_delivers_every_event_once_with_its_replay_id_and_channel(org: Org) -> None:
    journal = Journal()
    source = org.source(channels=[LOGIN, LOGOUT], replay="earliest")
    login, logout = org.publish(5), org.publish(3, LOGOUT)
    async with running(source, journal):
        await journal.wait_for(8)
        more = org.publish(4)
        await journal.wait_for(12)
    assert journal.ids(LOGIN) == login + more
    assert journal.ids(LOGOUT) == logout
    assert journal.position == {"replay": {LOGIN: more[-1], LOGOUT: logout[-1]}}
    first = journal.records[0]
    assert (first.source, first.kind) == ("streaming", "LoginEventStream")
    assert first.payload["EventIdentifier"] == "e0"
    assert first.envelope is not None
    assert isinstance(first.envelope["event_uuid"], str)
    assert first.from_json


async def test_latest_starts_with_new_events_only(org: Org) -> None:
    org.publish(3)
    journal = Journal()
    async with running(org.source(replay="latest"), journal):
        await until(lambda: len(org.requests("/meta/connect")) >= 1, org.server)
        new = org.publish(2)
        await journal.wait_for(2)
    assert journal.ids() == new


async def test_restart_resumes_after_the_stored_replay_id(org: Org) -> None:
    first, second = Journal(), Journal()
    before = org.publish(4)
    async with running(org.source(replay="earliest"), first):
        await first.wait_for(4)
    while_down = org.publish(3)
    async with running(org.source(replay="earliest"), second, first.position):
        await second.wait_for(3)
        after = org.publish(2)
        await second.wait_for(5)
    assert first.ids() == before
    assert second.ids() == while_down + after


async def test_unknown_client_rehandshakes_and_resubscribes_from_the_stored_id(org: Org) -> None:
    journal = Journal()
    rehandshakes = metric("forwarder_stream_reconnects_total", reason="rehandshake")
    async with running(org.source(replay="earliest"), journal):
        ids = org.publish(3)
        await journal.wait_for(3)
        org.server.forget_clients()
        ids += org.publish(3)
        await journal.wait_for(6)
        ids += org.publish(1)
        await journal.wait_for(7)
    assert journal.ids() == ids
    assert metric("forwarder_stream_reconnects_total", reason="rehandshake") == rehandshakes + 1
    resubscribe = org.requests("/meta/subscribe")[-1]
    assert resubscribe["ext"]["replay"][LOGIN] == ids[2]


async def test_session_expiry_invalidates_the_token_and_loses_nothing(org: Org) -> None:
    journal = Journal()
    async with running(org.source(replay="earliest"), journal):
        ids = org.publish(2)
        await journal.wait_for(2)
        org.auth.revoke()
        org.server.forget_clients()  # a revoked session loses its CometD client too
        ids += org.publish(3)
        await journal.wait_for(5)
    assert journal.ids() == ids
    assert org.auth.invalidated == ["tok-1"]
    assert org.requests("/meta/handshake")[-1]  # handshook again, with tok-2
    assert "tok-2" in org.auth.valid


async def test_revoked_token_on_connect_gets_a_new_token(org: Org) -> None:
    journal = Journal()
    async with running(org.source(replay="earliest"), journal):
        await until(lambda: len(org.requests("/meta/connect")) >= 1, org.server)
        org.auth.revoke()  # the held connect was let in with tok-1; the next one is refused
        ids = org.publish(2)
        await journal.wait_for(2)
        ids += org.publish(1)
        await journal.wait_for(3)
    assert journal.ids() == ids
    assert org.auth.invalidated == ["tok-1"]


async def test_stale_replay_id_resumes_from_the_earliest_and_reports_the_gap(org: Org) -> None:
    lost = org.publish(3)
    org.clock.now += timedelta(hours=73)  # the stored id falls out of the 72 h retention
    kept = org.publish(2)
    gaps = metric("forwarder_stream_replay_gaps_total", channel=LOGIN)
    journal = Journal()
    with capture_logs() as logs:
        async with running(org.source(), journal, {"replay": {LOGIN: lost[0]}}):
            await journal.wait_for(2)
    assert journal.ids() == kept
    assert metric("forwarder_stream_replay_gaps_total", channel=LOGIN) == gaps + 1
    stale = [e for e in logs if e["event"] == "stream_replay_id_stale"]
    gap = [e for e in logs if e["event"] == "stream_replay_gap"]
    assert stale[0]["log_level"] == "warning"
    assert stale[0]["stored_replay_id"] == lost[0]
    assert (gap[0]["stored_replay_id"], gap[0]["earliest_available_replay_id"]) == (lost[0], kept[0])


async def test_other_subscribe_error_retries_and_keeps_the_stored_id(org: Org) -> None:
    early = org.publish(3)
    later = org.publish(2)
    org.server.fail_subscribes(
        "403::Subscription limit exceeded for this topic", "503::Server is too busy.  Please try again"
    )
    journal = Journal()
    async with running(org.source(), journal, {"replay": {LOGIN: early[-1]}}):
        await journal.wait_for(2)
    assert journal.ids() == later  # not replayed from the start
    replays = [m["ext"]["replay"][LOGIN] for m in org.requests("/meta/subscribe")]
    assert replays == [early[-1]] * 3


async def test_a_failing_channel_is_reported_while_the_others_stream(org: Org) -> None:
    journal = Journal()
    org.bus.create_channel("/event/Restricted__e")
    org.server.fail_subscribes(*["403::Restricted channel"] * 3)
    source = org.source(channels=["/event/Restricted__e", LOGIN], replay="earliest")
    async with running(source, journal):
        ids = org.publish(2)
        await journal.wait_for(2)
        assert metric("forwarder_stream_subscribed", channel="/event/Restricted__e") == 0
        assert metric("forwarder_stream_subscribed", channel=LOGIN) == 1
        await until(lambda: "/event/Restricted__e" in source.subscribed, org.server)
        assert metric("forwarder_stream_subscribed", channel="/event/Restricted__e") == 1
    assert journal.ids() == ids


@pytest.mark.parametrize("kind", ["html", "empty", "array", "truncated"])
async def test_malformed_answers_for_a_while_lose_nothing(org: Org, kind: str) -> None:
    journal = Journal()
    async with running(org.source(replay="earliest"), journal):
        ids = org.publish(2)
        await journal.wait_for(2)
        org.server.malformed_responses(kind, count=25)
        ids += org.publish(3)
        await until(lambda: org.server.faults.malformed_count == 0, org.server)
        ids += org.publish(1)
        await journal.wait_for(6)
    assert journal.ids() == ids


async def test_handshake_denied_is_retried_until_it_succeeds(org: Org) -> None:
    org.server.deny_handshakes()
    journal = Journal()
    async with running(org.source(replay="earliest"), journal):
        await until(lambda: len(org.requests("/meta/handshake")) >= 3, org.server)
        org.server.deny_handshakes(None)
        ids = org.publish(2)
        await journal.wait_for(2)
    assert journal.ids() == ids


async def test_server_too_busy_on_connect_rehandshakes_without_a_new_token(org: Org) -> None:
    journal = Journal()
    busy = metric("forwarder_stream_reconnects_total", reason="server_busy")
    async with running(org.source(replay="earliest"), journal):
        ids = org.publish(1)
        await journal.wait_for(1)
        org.server.busy_connects(2)
        ids += org.publish(2)
        await journal.wait_for(3)
    assert journal.ids() == ids
    assert metric("forwarder_stream_reconnects_total", reason="server_busy") == busy + 2
    assert org.auth.invalidated == []  # the 401 error code around a 503 reason is not an auth failure


async def test_no_connect_is_sent_while_emit_is_pending(org: Org) -> None:
    journal = Journal()
    journal.gate = asyncio.Event()
    async with running(org.source(replay="earliest"), journal):
        org.publish(2)
        async with asyncio.timeout(10):
            await journal.emitting.wait()
        connects = len(org.requests("/meta/connect"))
        org.publish(2)
        for _ in range(20):  # give the source many turns of the loop and the server to misbehave in
            async with org.http.post(f"{org.auth.url}/cometd/62.0", json=[{"channel": "/meta/handshake"}]):
                pass
        assert len(org.requests("/meta/connect")) == connects
        journal.gate.set()
        await journal.wait_for(4)
    assert len(journal.ids()) == 4


async def test_http_401_with_a_rest_body_gets_a_new_token(org: Org) -> None:
    journal = Journal()
    async with running(org.source(replay="earliest"), journal):
        ids = org.publish(1)
        await journal.wait_for(1)
        org.server.rest_unauthorized(1)
        org.server.forget_clients()
        ids += org.publish(2)
        await journal.wait_for(3)
    assert journal.ids() == ids
    assert org.auth.invalidated == ["tok-1"]


async def test_a_token_endpoint_failure_is_retried(org: Org) -> None:
    failures = [RetryableError("token endpoint answered 200 without access_token/instance_url")] * 2
    real_session = org.auth.session

    async def flaky() -> Session:
        if failures:
            raise failures.pop()
        return await real_session()

    org.auth.session = flaky  # type: ignore[method-assign]
    journal = Journal()
    async with running(org.source(replay="earliest"), journal):
        ids = org.publish(2)
        await journal.wait_for(2)
    assert journal.ids() == ids
    assert failures == []


async def test_latest_resubscribes_from_the_earliest_when_no_event_was_stored_yet(org: Org) -> None:
    journal = Journal()
    async with running(org.source(replay="latest"), journal):
        await until(lambda: len(org.requests("/meta/connect")) >= 1, org.server)
        org.server.malformed_responses("html", count=3)  # an outage before the first event
        org.server.forget_clients()
        during = org.publish(2)
        await journal.wait_for(2)
    assert journal.ids() == during  # -1 again would have skipped them
    assert [m["ext"]["replay"][LOGIN] for m in org.requests("/meta/subscribe")] == [-1, -2]


async def test_stale_replay_on_the_automatic_resubscribe_is_not_lost_silently(org: Org) -> None:
    # The aiocometd-family defect (docs/streaming.md): a rejected re-subscribe drops the channel quietly.
    journal = Journal()
    gaps = metric("forwarder_stream_replay_gaps_total", channel=LOGIN)
    async with running(org.source(replay="earliest"), journal):
        before = org.publish(3)
        await journal.wait_for(3)
        org.clock.now += timedelta(hours=73)  # the stored id falls out of retention during an outage
        after = org.publish(2)
        org.server.forget_clients()
        await journal.wait_for(5)
        last = journal.records[-1].envelope
        assert last is not None
        assert (last["channel"], last["replay_id"]) == (LOGIN, after[-1])
    assert journal.ids() == before + after
    assert metric("forwarder_stream_replay_gaps_total", channel=LOGIN) == gaps + 1
    assert [m["ext"]["replay"][LOGIN] for m in org.requests("/meta/subscribe")] == [-2, before[-1], -2]


async def test_a_batch_the_journal_refused_is_read_again(org: Org) -> None:
    journal = Journal()
    refusals = [RetryableError("journal busy")]
    emit = journal.emit

    async def flaky_emit(records: Sequence[Record], position: Position | None) -> None:
        if refusals:
            raise refusals.pop()
        await emit(records, position)

    journal.emit = flaky_emit  # type: ignore[method-assign]
    ids = org.publish(3)
    async with running(org.source(replay="earliest"), journal):
        await journal.wait_for(3)
    assert journal.ids() == ids
    assert refusals == []


async def test_a_journal_slower_than_the_reconnect_window_loses_and_duplicates_nothing(org: Org) -> None:
    journal = Journal()
    journal.gate = asyncio.Event()
    async with running(org.source(replay="earliest"), journal):
        ids = org.publish(3)
        async with asyncio.timeout(10):
            await journal.emitting.wait()
        ids += org.publish(2)  # published while the journal is blocked
        org.server.forget_clients()  # what Salesforce does after 40 s without a reconnect
        journal.gate.set()
        await journal.wait_for(5)
        ids += org.publish(1)
        await journal.wait_for(6)
    assert journal.ids() == ids
