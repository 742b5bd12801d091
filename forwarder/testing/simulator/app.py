"""The ``Simulator``: one aiohttp server that is both login URL and instance URL of a seeded org."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import tempfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog
from aiohttp import web

from forwarder.testing.simulator import keys
from forwarder.testing.simulator.cometd import CometdServer, EventBus
from forwarder.testing.simulator.eventlogfile import LogFile
from forwarder.testing.simulator.faults import Faults
from forwarder.testing.simulator.oauth import Identity, OAuth
from forwarder.testing.simulator.org import OrgData
from forwarder.testing.simulator.rest import Rest
from forwarder.testing.simulator.traffic import DEFAULT_START, Activity, Traffic, iter_all

log = structlog.get_logger()

CLIENT_ID = "3MVG9sfforwarderSimulatorConsumerKey.0000000000000000000000000000000000000000000"
CLIENT_SECRET = "SIMULATOR0000000000000000000000000000000000000000000000000000000000"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Simulator:
    """``async with Simulator(seed=1) as org:`` serves a seeded org on 127.0.0.1 (a free port by default).

    At start it generates ``activities`` of traffic (plus the attacks for ``scenario="attacks"``), files
    their EventLogFile rows, stores their SOQL records and publishes their stream events to the CometD bus.
    """

    def __init__(
        self,
        seed: int = 1,
        scenario: str = "baseline",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        token_lifetime: timedelta = timedelta(hours=2),
        api_limit: int = 100_000,
        hourly: bool = True,
        page_size: int = 2000,
        connect_timeout: float = 110.0,
        activities: int = 200,
        start: datetime = DEFAULT_START,
        clock: Callable[[], datetime] = _utcnow,
        key_dir: Path | None = None,
        live_interval: float | None = None,
        files_at_creation: bool = False,
    ) -> None:
        if scenario not in ("baseline", "attacks"):
            raise ValueError(f"unknown scenario {scenario!r}: baseline | attacks")
        self.seed, self.scenario, self.host, self.port, self.tls = seed, scenario, host, port, tls
        self.clock = clock
        self.traffic = Traffic(seed, start=start)
        # files_at_creation: an EventLogFile exists only once ``clock()`` reaches its CreatedDate (3-6 h
        # after the hour, facts A2); by default every generated file is visible at once
        self.data = OrgData(self.traffic, hourly=hourly, visible_after=clock if files_at_creation else None)
        self.faults = Faults(target=self, clock=clock)
        self.bus = EventBus(clock=clock, seed=seed)
        self._key_dir_arg = key_dir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.token_lifetime, self.api_limit, self.page_size = token_lifetime, api_limit, page_size
        self.connect_timeout, self.activity_count = connect_timeout, activities
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.live_interval = live_interval
        self._live: asyncio.Task[None] | None = None
        self._pending: list[Activity] = []  # activities whose ELF rows are not filed yet

    # --- lifecycle -----------------------------------------------------------------------------------------
    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        key_dir = self._key_dir_arg
        if key_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sf-simulator-")
            key_dir = Path(self._tmp.name)
        self.keys = keys.generate(key_dir, self.host)
        user = self.traffic.users[1]
        self.identity = Identity(
            self.traffic.org_id, user.id, user.username, CLIENT_ID, CLIENT_SECRET, self.keys.public_key_pem
        )
        self.oauth = OAuth(self.identity, self.faults, token_lifetime=self.token_lifetime, clock=self.clock)
        self.rest = Rest(
            self.data,
            self.oauth,
            self.faults,
            api_limit=self.api_limit,
            page_size=self.page_size,
        )
        self.cometd = CometdServer(self.bus, self.oauth.check, connect_timeout=self.connect_timeout)
        self.cometd.denied_channels = self.faults.denied_channels  # one set: faults.deny() reaches CometD
        self.add_activities(iter_all(self.traffic, self.scenario, self.activity_count))
        await self._serve()
        if self.live_interval:
            self._live = asyncio.create_task(self._live_traffic(self.live_interval))
        log.info("simulator_started", base_url=self.base_url, seed=self.seed, scenario=self.scenario)

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/services/oauth2/token", self.oauth.handle)
        app.router.add_post("/services/oauth2/revoke", self.oauth.revoke)
        app.router.add_post("/_sim/faults", self.faults.admin)
        self.rest.add_routes(app)
        self.cometd.add_routes(app)
        app.on_response_prepare.append(self._date_header)
        # aiohttp refuses request lines over 8 KB itself; Salesforce allows 16 KB (REST answers 414 above)
        self._runner = web.AppRunner(app, handle_signals=False, max_line_size=65_536, max_field_size=65_536)
        await self._runner.setup()
        context = None
        if self.tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.keys.cert_path, self.keys.private_key_path)
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=context)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"{'https' if self.tls else 'http'}://{self.host}:{port}"
        self.oauth.base_url = self.base_url

    async def _date_header(self, request: web.Request, response: web.StreamResponse) -> None:
        """With ``faults.clock_skew`` the Date header (RFC 9110 §6.6.1) tells a server clock that is off."""
        if self.faults.clock_skew:
            when = self.clock() + timedelta(seconds=self.faults.clock_skew)
            response.headers["Date"] = format_datetime(when.astimezone(UTC), usegmt=True)

    async def stop(self) -> None:
        if self._live is not None:
            self._live.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._live
            self._live = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # --- credentials ---------------------------------------------------------------------------------------
    @property
    def client_id(self) -> str:
        return CLIENT_ID

    @property
    def client_secret(self) -> str:
        return CLIENT_SECRET

    @property
    def username(self) -> str:
        return self.identity.username

    @property
    def private_key_path(self) -> Path:
        return self.keys.private_key_path

    @property
    def cert_path(self) -> Path:
        """Self-signed certificate: the JWT signing cert, and the CA file to trust with ``tls=True``."""
        return self.keys.cert_path

    @property
    def refresh_token(self) -> str:
        return self.oauth.refresh_token

    def salesforce_config(self) -> dict[str, Any]:
        """The ``salesforce:`` section of a forwarder config that signs in to this org (JWT bearer)."""
        return {
            "login_url": self.base_url,
            "auth": {
                "type": "jwt_bearer",
                "client_id": self.client_id,
                "username": self.username,
                "private_key_file": str(self.private_key_path),
            },
        }

    @property
    def org_id(self) -> str:
        return self.traffic.org_id

    # --- data access ---------------------------------------------------------------------------------------
    @property
    def activities(self) -> list[Activity]:
        """Ground truth: every activity the org has seen, in generation order."""
        return self.data.activities

    @property
    def log_files(self) -> dict[str, LogFile]:
        return self.data.log_files

    def publish(self, channel: str, payload: dict[str, Any]) -> int:
        """Publish to the CometD bus (``/event/LoginEventStream``...); returns the replay id."""
        return self.bus.publish(channel, payload)

    def add_activities(
        self, activities: Iterable[Activity], *, publish: bool = True, log_files: bool = True
    ) -> list[Activity]:
        """Add traffic: SOQL records now, stream events published, ELF rows filed (hourly and daily)."""
        added = self.data.add_activities(activities)
        if publish:
            for activity in added:
                if activity.channel and activity.payload is not None:
                    self.bus.publish(activity.channel, activity.payload)
        if log_files:
            self.data.build_log_files(added)
        return added

    def add_log_file(
        self,
        event_type: str,
        rows: Iterable[dict[str, str]] | int,
        *,
        log_date: datetime,
        interval: str = "Hourly",
        sequence: int | None = None,
        created_date: datetime | None = None,
    ) -> LogFile:
        """A file of the given rows, or of ``rows`` generated unique rows (any size, streamed)."""
        return self.data.add_log_file(
            event_type,
            rows,
            log_date=log_date,
            interval=interval,
            sequence=sequence,
            created_date=created_date,
        )

    def add_audit_trail(self, action: str, section: str, display: str, **kw: Any) -> dict[str, Any]:
        return self.data.add_audit_trail(action, section, display, **kw)

    def generate(self, count: int = 1) -> list[Activity]:
        """Activities happening now: streamed and in SOQL at once; ELF rows wait for file_logs()."""
        made = [self.traffic.random_activity(at=self.clock()) for _ in range(count)]
        added = self.add_activities(made, log_files=False)
        self._pending.extend(added)
        return added

    def file_logs(self) -> list[LogFile]:
        """File pending ELF rows now: hourly files (Sequence continuing per hour), created at this instant.

        Live files appear at once instead of 3-6 hours later, so a demo shows them; without the hourly
        entitlement they wait for the day to end and become one Daily file.
        """
        now = self.clock()
        if self.data.hourly:
            due, self._pending = self._pending, []
            made = self.data.build_log_files(due, late=True)
        else:
            today = now.replace(hour=0, minute=0, second=0, microsecond=0)
            due = [a for a in self._pending if a.at < today]
            self._pending = [a for a in self._pending if a.at >= today]
            made = self.data.build_log_files(due) if due else []
        for log_file in made:
            log_file.created_date = now
        return made

    async def _live_traffic(self, interval: float) -> None:
        hour = self.clock().replace(minute=0, second=0, microsecond=0)
        while True:
            await asyncio.sleep(interval)
            self.generate()
            current = self.clock().replace(minute=0, second=0, microsecond=0)
            if current != hour:
                self.file_logs()
                hour = current

    def stream_events(self, channel: str | None = None) -> list[Activity]:
        return [a for a in self.activities if a.channel and (channel is None or a.channel == channel)]

    # --- FaultTarget ---------------------------------------------------------------------------------------
    def expire_sessions(self) -> None:
        self.oauth.expire_all()

    def forget_cometd_clients(self) -> None:
        self.cometd.forget_clients()

    def set_hourly_entitlement(self, enabled: bool) -> None:
        self.data.hourly = enabled

    def late_hourly_file(self, event_type: str, rows: int) -> str:
        """Rows that arrive late for the last filed hour: a re-issue with Sequence + 1 and only those rows."""
        hours = [
            f.log_date
            for f in self.log_files.values()
            if f.event_type == event_type and f.interval == "Hourly"
        ]
        if not hours:
            raise ValueError(f"no hourly {event_type} file to re-issue")
        hour = max(hours)
        late = [
            self.traffic.elf_activity(event_type, hour + timedelta(minutes=50, seconds=i))
            for i in range(rows)
        ]
        late = [
            Activity(a.kind, a.at, a.user, elf={event_type: a.elf[event_type]}, scenario="late") for a in late
        ]
        self.data.add_activities(late)
        was = self.data.hourly
        self.data.hourly = True
        made = self.data.build_log_files(late, late=True)
        self.data.hourly = was
        return made[0].id
