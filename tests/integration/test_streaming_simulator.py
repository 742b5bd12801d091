"""StreamingSource with the real Authenticator against the full org simulator (OAuth + CometD)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import aiohttp
import pytest
from pydantic import SecretStr

from forwarder.records import Position, Record
from forwarder.salesforce.auth import Authenticator, ClientCredentialsAuth, SalesforceConfig
from forwarder.sources.streaming import StreamingConfig, StreamingSource
from forwarder.testing.clock import ManualClock
from forwarder.testing.simulator import Simulator

LOGIN, LOGOUT = "/event/LoginEventStream", "/event/LogoutEventStream"


def Clock() -> ManualClock:
    return ManualClock()


class Journal:
    def __init__(self) -> None:
        self.records: list[Record] = []
        self.position: Position | None = None
        self._changed = asyncio.Event()

    async def emit(self, records: Sequence[Record], position: Position | None) -> None:
        self.records.extend(records)
        self.position = position
        self._changed.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(15):
            while len(self.records) < count:
                self._changed.clear()
                await self._changed.wait()

    def identifiers(self) -> list[str]:
        return [r.payload["EventIdentifier"] for r in self.records]


@pytest.fixture
def clock() -> ManualClock:
    return Clock()


@pytest.fixture
async def org(clock: ManualClock) -> AsyncIterator[Simulator]:
    async with Simulator(seed=3, connect_timeout=0.3, activities=120, clock=clock) as sim:
        yield sim


@contextlib.asynccontextmanager
async def streaming(
    org: Simulator, journal: Journal, position: Position | None = None, clock: ManualClock | None = None
) -> AsyncIterator[Authenticator]:
    config = SalesforceConfig(
        login_url=org.base_url,
        api_version="62.0",
        auth=ClientCredentialsAuth(
            type="client_credentials", client_id=org.client_id, client_secret=SecretStr(org.client_secret)
        ),
    )
    async with aiohttp.ClientSession() as http:
        auth = Authenticator(config, http, clock=clock) if clock else Authenticator(config, http)
        source = StreamingSource(
            StreamingConfig(channels=[LOGIN, LOGOUT], replay="earliest"),
            auth,
            "62.0",
            http,
            backoff=lambda _: 0.0,
        )
        task = asyncio.create_task(source.run(position, journal.emit))
        try:
            yield auth
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def published(org: Simulator) -> list[str]:
    return [
        str(a.payload["EventIdentifier"])
        for a in org.stream_events()
        if a.channel in (LOGIN, LOGOUT) and a.payload
    ]


async def test_every_simulated_stream_event_arrives_once_through_expiry_and_forgotten_clients(
    org: Simulator,
) -> None:
    expected = published(org)
    assert expected, "the simulator published no login/logout stream events"
    journal = Journal()
    async with streaming(org, journal) as auth:
        await journal.wait_for(len(expected))
        org.expire_sessions()
        org.forget_cometd_clients()
        more = [org.publish(LOGIN, {"EventIdentifier": f"late-{i}", "Username": "x@y.z"}) for i in range(3)]
        await journal.wait_for(len(expected) + 3)
        assert auth.token_requests >= 2  # the expired session was replaced
    assert sorted(journal.identifiers()) == sorted([*expected, "late-0", "late-1", "late-2"])
    assert journal.position is not None
    assert journal.position["replay"][LOGIN] == more[-1]


async def test_restart_after_retention_passed_resumes_from_the_earliest_retained(
    org: Simulator, clock: ManualClock
) -> None:
    first = Journal()
    async with streaming(org, first):
        await first.wait_for(len(published(org)))
    clock.now += timedelta(hours=80)  # everything seen is now out of the 72 h retention
    fresh = org.publish(LOGIN, {"EventIdentifier": "after-gap", "Username": "x@y.z"})
    second = Journal()
    async with streaming(org, second, first.position, clock):
        await second.wait_for(1)
    assert second.identifiers() == ["after-gap"]
    assert second.position is not None
    assert second.position["replay"][LOGIN] == fresh
