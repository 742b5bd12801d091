"""``sf-forwarder run``: wire journal, sinks, deliveries, sources and the ops server, and shut down cleanly.

Start order: journal, ops server, deliveries (they drain what an earlier run left), then sources.
Stop order (SIGTERM/SIGINT): sources first (no new data), deliveries drain in-flight batches within the
deadline, then the journal closes. Exit 0 only after a requested stop; anything else is non-zero so an
orchestrator restarts the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog

from forwarder import server
from forwarder.alerts.consumer import RuleConsumer
from forwarder.alerts.engine import Engine
from forwarder.alerts.rules import load_rules
from forwarder.config import ALERT_CONSUMER, AnySinkConfig, Config
from forwarder.delivery import Delivery
from forwarder.ingest import make_emit
from forwarder.journal import Journal
from forwarder.journal.sqlite import SqliteJournal
from forwarder.logging import configure
from forwarder.salesforce.auth import Authenticator
from forwarder.salesforce.rest import RestClient
from forwarder.sources import Source
from forwarder.sources.eventlogfile import EventLogFileSource
from forwarder.sources.loginhistory import LoginHistorySource
from forwarder.sources.setupaudittrail import SetupAuditTrailSource
from forwarder.sources.streaming import StreamingSource
from sinks import Sink
from sinks.datadog import DatadogConfig, DatadogSink
from sinks.file import FileSink, FileSinkConfig
from sinks.splunk_hec import SplunkHecConfig, SplunkHecSink
from sinks.syslog import SyslogConfig, SyslogSink
from sinks.webhook import WebhookConfig, WebhookSink

log = structlog.get_logger()

#: Seconds that in-flight batches get to finish after a stop request.
DRAIN_DEADLINE = 20.0
#: How often, and how long at most, each sink's health check runs for /readyz.
SINK_CHECK_INTERVAL = 30.0
SINK_CHECK_TIMEOUT = 10.0


def build_sink(config: AnySinkConfig) -> Sink:
    """One sink object from its config section."""
    if isinstance(config, SplunkHecConfig):
        return SplunkHecSink(config)
    if isinstance(config, DatadogConfig):
        return DatadogSink(config)
    if isinstance(config, SyslogConfig):
        return SyslogSink(config)
    if isinstance(config, FileSinkConfig):
        return FileSink(config)
    if isinstance(config, WebhookConfig):
        return WebhookSink(config)
    raise TypeError(f"no sink for {type(config).__name__}")


async def open_journal(config: Config, *, exclusive: bool = False) -> SqliteJournal:
    """The journal of this config, with the configured sinks as its live consumers. The daemon opens it
    ``exclusive``: a second daemon on the same state file fails at once instead of delivering twice."""
    return await SqliteJournal.open(
        config.state.path,
        max_bytes=config.state.max_bytes,
        when_full=config.state.when_full,
        consumers=[s.name for s in config.sinks] + ([ALERT_CONSUMER] if config.rules.paths else []),
        synchronous=config.state.synchronous,
        exclusive=exclusive,
    )


def build_rule_consumer(config: Config, journal: Journal) -> RuleConsumer | None:
    """The alert rule engine over the journal, when rule paths are configured (rules load at start)."""
    if not config.rules.paths:
        return None
    rules = load_rules(config.rules.paths)
    engine = Engine(rules, allowed_lateness=config.rules.allowed_lateness, max_groups=config.rules.max_groups)
    assert isinstance(journal, SqliteJournal)  # commit_derived: the embedded journal's transaction
    return RuleConsumer(engine, journal)


def build_sources(config: Config, auth: Authenticator, http: aiohttp.ClientSession) -> list[Source]:
    """The enabled sources; they share one authenticator and one HTTP session."""
    rest = RestClient(auth, http, config.salesforce.api_version)
    sources: list[Source] = []
    if config.sources.streaming.enabled:
        sources.append(StreamingSource(config.sources.streaming, auth, config.salesforce.api_version, http))
    if config.sources.eventlogfile.enabled:
        sources.append(EventLogFileSource(config.sources.eventlogfile, rest))
    if config.sources.setupaudittrail.enabled:
        sources.append(SetupAuditTrailSource(config.sources.setupaudittrail, rest))
    if config.sources.loginhistory.enabled:
        sources.append(LoginHistorySource(config.sources.loginhistory, rest))
    return sources


@dataclass
class Forwarder:
    """The running daemon. ``stop()`` asks for a clean shutdown; ``run()`` returns once it is done."""

    config: Config
    health: server.Health = field(default_factory=server.Health)
    listen: str | None = None  # overrides config.server.listen (tests use port 0)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    journal: Journal | None = None
    ops: Any = None

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        journal = await open_journal(self.config, exclusive=True)
        self.journal = journal
        self.health.journal_open = True
        runner = await server.start(self.health, self.listen or self.config.server.listen)
        self.ops = runner
        try:
            connector = aiohttp.TCPConnector(ssl=self.config.salesforce.tls.client_context("salesforce.tls"))
            async with aiohttp.ClientSession(connector=connector) as http:
                await self._serve(journal, http)
        finally:
            self.health.journal_open = False
            await runner.cleanup()
            await journal.close()

    async def _serve(self, journal: Journal, http: aiohttp.ClientSession) -> None:
        sinks = [build_sink(c) for c in self.config.sinks]
        deliveries = [
            Delivery(s, c.route, journal, concurrency=c.concurrency, batch=c.batch)
            for s, c in zip(sinks, self.config.sinks, strict=True)
        ]
        auth = Authenticator(self.config.salesforce, http)
        sources = build_sources(self.config, auth, http)
        try:
            async with asyncio.TaskGroup() as group:
                delivery_tasks = [group.create_task(d.run(), name=f"sink:{d.name}") for d in deliveries]
                rules = build_rule_consumer(self.config, journal)
                if rules is not None:
                    delivery_tasks.append(group.create_task(rules.run(), name="alert-rules"))
                source_tasks = [
                    group.create_task(self._run_source(s, journal), name=f"source:{s.name}") for s in sources
                ]
                watchers = [
                    group.create_task(self._watch_auth(auth), name="auth-watch"),
                    group.create_task(self._watch_sinks(sinks), name="sink-watch"),
                ]
                await self._stop.wait()
                log.info("stopping", drain_deadline=DRAIN_DEADLINE)
                for task in source_tasks:
                    task.cancel()
                if rules is not None:
                    rules.stop()
                await asyncio.gather(*(d.stop(DRAIN_DEADLINE) for d in deliveries))
                for task in [*delivery_tasks, *watchers]:
                    task.cancel()
        finally:
            for sink in sinks:
                with contextlib.suppress(Exception):
                    await sink.close()

    async def _run_source(self, source: Source, journal: Journal) -> None:
        position = await journal.position(source.name)
        emit = make_emit(journal, source.name, source.lane, raw=self.config.normalize.raw)
        log.info("source_started", source=source.name, resumed=position is not None)
        await source.run(position, emit)

    async def _watch_sinks(self, sinks: list[Sink]) -> None:
        """Each sink's health check for ``/readyz`` (shown, not gating: the journal spools meanwhile)."""
        while True:
            for sink in sinks:
                try:
                    async with asyncio.timeout(SINK_CHECK_TIMEOUT):
                        await sink.check()
                    state = "ok"
                except Exception as exc:  # any failure is a state to show; delivery handles the data
                    state = type(exc).__name__
                if self.health.sinks.get(sink.name) != state and state != "ok":
                    log.warning("sink_unhealthy", sink=sink.name, error=state)
                self.health.sinks[sink.name] = state
            await asyncio.sleep(SINK_CHECK_INTERVAL)

    async def _watch_auth(self, auth: Authenticator) -> None:
        """Readiness: authenticated to Salesforce. Re-checked every 30 s (token cache makes it cheap)."""
        while True:
            try:
                await auth.session()
                self.health.salesforce_authenticated = True
            except Exception as exc:  # any failure means "not ready"; the reason is logged
                self.health.salesforce_authenticated = False
                log.warning("salesforce_auth_failed", error=type(exc).__name__, detail=str(exc))
            await asyncio.sleep(30)


def tune_gc() -> None:
    """Keep the cyclic garbage collector off the hot path. Every batch read from the journal allocates
    thousands of short-lived dicts; with the default thresholds Python re-scans the whole heap (modules,
    pydantic schemas, compiled mappers) many times per second, which measured as most of the cost of a
    journal read (25 us per event, 3.5 us without GC). Objects alive after start-up are frozen out of every
    collection, and young collections run every 20,000 allocations instead of 700."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def install_signal_handlers(stop: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)


async def main(config: Config, *, ready: Callable[[Forwarder], Awaitable[None]] | None = None) -> int:
    """Run until SIGTERM/SIGINT; 0 after a requested stop, 1 when a component failed."""
    configure(config.logging.level, config.logging.format)
    forwarder = Forwarder(config)
    install_signal_handlers(forwarder.stop)
    tune_gc()
    try:
        await forwarder.run()
    except Exception:
        log.exception("forwarder_failed")
        return 1
    log.info("stopped")
    return 0
