"""``sf-forwarder doctor``: check a deployment end to end, one PASS/WARN/FAIL/SKIP line per check with a
fix hint, exit 0 when nothing failed. It reads only: no journal is opened, no position moves, no event is
sent (a CometD subscription is made with replay -1 and dropped at once)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal

import aiohttp
from pydantic import BaseModel, SecretStr

from forwarder.config import Config
from forwarder.errors import AuthenticationError, ConfigError, ForwarderError
from forwarder.journal._store import SCHEMA_VERSION
from forwarder.logging import configure, redact_text
from forwarder.salesforce.auth import Authenticator, SalesforceSession
from forwarder.salesforce.bayeux import BayeuxClient, ReplyKind
from forwarder.salesforce.rest import RestClient, SalesforceApiError

Status = Literal["pass", "warn", "fail", "skip"]

#: Per-check limit: a peer that does not answer is a failure, not a hang.
CHECK_TIMEOUT = 15.0
#: Below this much free space the journal cannot take even one large EventLogFile batch safely.
MIN_FREE_BYTES = 64 * 2**20
#: Clock skew limits. The JWT bearer assertion lives 150 s and Salesforce refuses one whose exp is more than
#: 3 minutes ahead of its own clock (auth.JWT_LIFETIME; Help "OAuth 2.0 JWT Bearer Flow"), so a clock 30 s
#: ahead already breaks sign-in; watermarks with an overlap tolerate a few seconds.
SKEW_WARN_SECONDS = 5.0
SKEW_FAIL_SECONDS = 30.0


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    status: Status
    detail: str
    hint: str = ""


@dataclass
class _Org:
    """What the Salesforce checks learn and share: the session, the REST client, the server's Date."""

    session: SalesforceSession | None = None
    rest: RestClient | None = None
    auth: Authenticator | None = None


# --- local checks ----------------------------------------------------------------------------------------


def check_config(path: str) -> tuple[Check, Config | None]:
    from forwarder import config as config_module

    try:
        config = config_module.load(path)
    except ConfigError as exc:
        hint = "fix the lines above; `sf-forwarder check-config -c FILE` repeats this check"
        return Check("config", "fail", "; ".join(exc.problems), hint), None
    enabled = [name for name, section in config.sources if getattr(section, "enabled", False)]
    detail = f"valid: sources {', '.join(enabled) or 'none'}; sinks {', '.join(s.name for s in config.sinks)}"
    return Check("config", "pass", detail), config


def check_rules(config: Config) -> Check:
    """The alert rule files load (the daemon would refuse to start otherwise)."""
    from forwarder.alerts.rules import load_rules, rule_files

    paths = config.rules.paths
    if not paths:
        return Check("rules", "skip", "no rule paths: no alerts are raised")
    try:
        rules = load_rules(paths)
    except ConfigError as exc:
        return Check("rules", "fail", str(exc).replace("\n", "; "), "fix the named rule file and field")
    files = len(rule_files(paths))
    return Check("rules", "pass", f"{len(rules)} rules from {files} files")


def check_state(config: Config) -> Check:
    """The journal's folder is writable (or can be made) and has room for it."""
    path = config.state.path
    folder = path.parent
    existing = _nearest_existing(folder)
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        return Check(
            "state",
            "fail",
            f"{folder} is not writable by uid {os.getuid()}",
            "mount a writable volume there (container: /var/lib/sf-forwarder, owned by uid 10001) "
            "or set state.path",
        )
    free = shutil.disk_usage(existing).free
    # the journal is the database plus its write-ahead log (SQLite WAL mode)
    used = sum(f.stat().st_size for f in (path, Path(f"{path}-wal")) if f.exists())
    room = config.state.max_bytes - used
    where = f"{folder}{'' if existing == folder else ' (will be created)'}"
    limit = _size(config.state.max_bytes)
    detail = f"{where} writable; journal {_size(used)} of max {limit}, {_size(free)} free"
    schema = journal_schema(path)
    if schema is not None and schema > SCHEMA_VERSION:
        hint = "this journal was written by a newer sf-forwarder: run that version (no downgrade)"
        return Check("state", "fail", f"{detail}; journal schema {schema} > {SCHEMA_VERSION}", hint)
    if free < MIN_FREE_BYTES:
        return Check("state", "fail", detail, "free disk space on the state volume")
    if free < room:
        hint = f"the journal may grow to state.max_bytes ({limit}): lower it or grow the volume"
        return Check("state", "warn", detail, hint)
    return Check("state", "pass", detail)


def journal_schema(path: Path) -> int | None:
    """The journal's schema version (``PRAGMA user_version``), read without writing or locking; None when
    there is no journal yet or it cannot be read."""
    if not path.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=1)) as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.Error:
        return None


def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


# --- Salesforce checks -----------------------------------------------------------------------------------

_AUTH_HINTS = {
    # error_description texts of the token endpoint (Help "OAuth 2.0 JWT Bearer Flow"; facts D3)
    "user hasn't approved this consumer": "pre-authorise the user: connected app policy 'Admin approved "
    "users are pre-authorized' and the user's profile or permission set on the app",
    "audience is invalid": "set salesforce.auth.audience (sandbox: https://test.salesforce.com) or login_url",
    "expired authorization code": "the local clock is behind Salesforce's: sync it (NTP)",
    "invalid_client_id": "salesforce.auth.client_id must be the app's consumer key",
    "invalid_client": "client_id/client_secret do not match the app (or the flow is not enabled for it)",
    "invalid assertion": "private_key_file must be the key of the certificate uploaded to the connected app",
    "inactive_user": "the integration user is frozen or inactive",
}


async def check_login(config: Config, http: aiohttp.ClientSession, org: _Org) -> Check:
    auth = Authenticator(config.salesforce, http)
    try:
        org.session = await auth.session()
    except AuthenticationError as exc:
        hint = next((h for key, h in _AUTH_HINTS.items() if key in str(exc)), "check salesforce.auth")
        return Check("salesforce.login", "fail", str(exc), hint)
    except ForwarderError as exc:
        hint = f"is {config.salesforce.login_url} reachable from here (proxy, firewall, salesforce.tls)?"
        return Check("salesforce.login", "fail", str(exc), hint)
    org.auth = auth
    org.rest = RestClient(auth, http, config.salesforce.api_version)
    grant = config.salesforce.auth.type
    return Check("salesforce.login", "pass", f"{grant} token issued; instance {org.session.instance_url}")


async def check_api_version(config: Config, http: aiohttp.ClientSession, org: _Org) -> list[Check]:
    """The versions the org offers (``GET /services/data/``) and the clock skew from the same answer."""
    assert org.session is not None
    url = org.session.instance_url + "/services/data/"
    before = time.time()
    async with http.get(url) as resp:
        body = await resp.json(content_type=None)
        date = resp.headers.get("Date")
    after = time.time()
    offered = [str(v.get("version")) for v in body if isinstance(v, dict)] if isinstance(body, list) else []
    wanted = config.salesforce.api_version
    if wanted in offered:
        version = Check("salesforce.api_version", "pass", f"{wanted} offered (newest {offered[-1]})")
    else:
        newest = offered[-1] if offered else "none"
        version = Check(
            "salesforce.api_version",
            "fail",
            f"{wanted} is not offered by this org (newest {newest})",
            f"set salesforce.api_version to one the org lists, e.g. {newest}",
        )
    return [version, clock_skew(date, before, after)]


def clock_skew(date: str | None, sent: float, received: float) -> Check:
    """Salesforce's ``Date`` header (RFC 9110 §6.6.1, whole seconds) against the local clock mid-request."""
    if not date:
        return Check("clock", "warn", "Salesforce sent no Date header; skew unknown")
    try:
        server = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return Check("clock", "warn", f"unreadable Date header {date!r}; skew unknown")
    skew = server - (sent + received) / 2
    slack = 1.0 + (received - sent) / 2  # the header's resolution plus half the round trip
    detail = f"local clock {'behind' if skew > 0 else 'ahead of'} Salesforce by {abs(skew):.1f} s"
    if abs(skew) <= max(SKEW_WARN_SECONDS, slack):
        return Check("clock", "pass", detail)
    status: Status = "fail" if abs(skew) > SKEW_FAIL_SECONDS + slack else "warn"
    return Check("clock", status, detail, "sync the clock (NTP/chrony): JWT sign-in fails past ~30 s of skew")


_OBJECT_HINTS = {
    "EventLogFile": "the integration user needs 'View Event Log Files' and 'API Enabled' (Event Monitoring "
    "licence for most event types)",
    "SetupAuditTrail": "the integration user needs 'View Setup and Configuration'",
    "LoginHistory": "the integration user needs 'Manage Users' (or 'View All Users')",
}


async def check_query(org: _Org, sobject: str, fields: str = "Id") -> Check:
    """One small SOQL query: proves the object is visible to the integration user."""
    assert org.rest is not None
    soql = f"SELECT {fields} FROM {sobject} ORDER BY CreatedDate DESC LIMIT 1"  # noqa: S608 (constants only)
    name = f"salesforce.{sobject}"
    try:
        rows = [row async for row in org.rest.query(soql)]
    except SalesforceApiError as exc:
        hint = _OBJECT_HINTS.get(sobject, "check the user's permissions")
        if exc.error_code == "INVALID_FIELD" and "Interval" in fields:
            hint = "the org has no hourly EventLogFile entitlement: set sources.eventlogfile.interval: Daily"
        return Check(name, "fail", f"query refused: {exc.error_code}", hint)
    detail = "query works" + ("" if rows else " (no records yet)")
    return Check(name, "pass", detail + _usage(org.rest))


def _usage(rest: RestClient) -> str:
    if rest.usage is None:
        return ""
    return f"; daily API usage {rest.usage.used}/{rest.usage.limit} ({rest.usage.share:.0%})"


async def check_streaming(config: Config, http: aiohttp.ClientSession, org: _Org) -> list[Check]:
    """Handshake, subscribe each channel from ``-1`` (new events only: nothing is replayed), disconnect."""
    assert org.session is not None
    endpoint = f"{org.session.instance_url}/cometd/{config.salesforce.api_version}"
    client = BayeuxClient(http, endpoint, org.session.access_token)
    try:
        await client.handshake()
    except ForwarderError as exc:
        return [Check("salesforce.streaming", "fail", f"handshake failed: {exc}", "check the API version")]
    checks = []
    try:
        for channel in config.sources.streaming.channels:
            result = await client.subscribe(channel, -1)
            if result.kind is ReplyKind.OK:
                checks.append(Check(f"salesforce.streaming {channel}", "pass", "subscribed"))
            else:
                hint = (
                    "enable streaming for this event in Setup > Event Manager; the user needs "
                    "'View Real-Time Event Monitoring Data' (Event Monitoring or Shield licence)"
                )
                checks.append(Check(f"salesforce.streaming {channel}", "fail", str(result.error), hint))
    finally:
        await client.disconnect()
    return checks


# --- sinks -----------------------------------------------------------------------------------------------

_SINK_HINTS = {
    "splunk_hec": "check url, that HEC is enabled (Global Settings) and tls; the token is checked on send",
    "datadog": "check site/url and api_key (GET /api/v1/validate refused or unreachable)",
    "syslog": "check address, that the receiver listens there and accepts our TLS identity",
    "file": "the file's folder must be writable (in a container: on the state volume)",
    "webhook": "check url and tls: the endpoint's host must accept a connection (nothing is posted)",
}


async def check_sink(sink_config: Any) -> Check:
    from forwarder.app import build_sink

    name = f"sink {sink_config.name}"
    try:
        sink = build_sink(sink_config)
    except ForwarderError as exc:
        return Check(name, "fail", str(exc), "fix the sink's section in the config")
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await sink.check()
    except (ForwarderError, OSError, TimeoutError, aiohttp.ClientError) as exc:
        detail = str(exc) or type(exc).__name__
        return Check(name, "fail", f"{sink_config.type}: {detail}", _SINK_HINTS.get(sink_config.type, ""))
    finally:
        await sink.close()
    return Check(name, "pass", f"{sink_config.type} reachable")


# --- running everything ----------------------------------------------------------------------------------


async def _guard(name: str, step: Callable[[], Awaitable[list[Check]]]) -> list[Check]:
    """Run one check with a time limit; an unexpected failure is that check's FAIL, not a traceback."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return await step()
    except TimeoutError:
        return [Check(name, "fail", f"no answer within {CHECK_TIMEOUT:.0f} s", "check network and proxy")]
    except (ForwarderError, aiohttp.ClientError, OSError, ValueError) as exc:
        hint = "check network, proxy and salesforce.tls"
        return [Check(name, "fail", f"{type(exc).__name__}: {exc}", hint)]


async def run_checks(config: Config) -> list[Check]:
    """Every check after the config one, in order; Salesforce checks after a failed login are SKIP."""
    checks = [check_rules(config), check_state(config)]
    org = _Org()
    connector = aiohttp.TCPConnector(ssl=config.salesforce.tls.client_context("salesforce.tls"))
    async with aiohttp.ClientSession(connector=connector) as http:
        checks += await _guard("salesforce.login", lambda: _one(check_login(config, http, org)))
        checks += await _salesforce(config, http, org)
    for sink_config in config.sinks:
        checks += await _guard(f"sink {sink_config.name}", _sink_step(sink_config))
    return checks


async def _salesforce(config: Config, http: aiohttp.ClientSession, org: _Org) -> list[Check]:
    sources = config.sources
    steps: list[tuple[str, bool, Callable[[], Awaitable[list[Check]]]]] = [
        ("salesforce.api_version", True, lambda: check_api_version(config, http, org)),
        ("salesforce.streaming", sources.streaming.enabled, lambda: check_streaming(config, http, org)),
        ("salesforce.EventLogFile", sources.eventlogfile.enabled, lambda: _one(_elf(config, org))),
        (
            "salesforce.SetupAuditTrail",
            sources.setupaudittrail.enabled,
            lambda: _one(check_query(org, "SetupAuditTrail")),
        ),
        (
            "salesforce.LoginHistory",
            sources.loginhistory.enabled,
            lambda: _one(check_query(org, "LoginHistory")),
        ),
    ]
    out: list[Check] = []
    for name, enabled, step in steps:
        if not enabled:
            out.append(Check(name, "skip", "source disabled"))
        elif org.session is None:
            out.append(Check(name, "skip", "needs a working Salesforce login"))
        else:
            out += await _guard(name, step)
    return out


def _elf(config: Config, org: _Org) -> Awaitable[Check]:
    hourly = config.sources.eventlogfile.interval == "Hourly"
    return check_query(org, "EventLogFile", "Id, Interval" if hourly else "Id")


def _sink_step(sink_config: Any) -> Callable[[], Awaitable[list[Check]]]:
    return lambda: _one(check_sink(sink_config))


async def _one(check: Awaitable[Check]) -> list[Check]:
    return [await check]


# --- report ----------------------------------------------------------------------------------------------


def secrets_of(model: BaseModel) -> Iterator[str]:
    """Every secret value in the config tree, so the report can never show one (belt and braces)."""
    for name in type(model).model_fields:
        yield from _secret_values(getattr(model, name))


def _secret_values(value: Any) -> Iterator[str]:
    if isinstance(value, SecretStr):
        if len(value.get_secret_value()) >= 4:
            yield value.get_secret_value()
    elif isinstance(value, BaseModel):
        yield from secrets_of(value)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _secret_values(item)


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[REDACTED]")
    return redact_text(text)


def render(path: str, checks: list[Check], secrets: list[str]) -> str:
    lines = [f"sf-forwarder doctor: {path}"]
    width = max(len(c.name) for c in checks)
    for check in checks:
        lines.append(f"  {check.status.upper():<4}  {check.name:<{width}}  {_scrub(check.detail, secrets)}")
        if check.hint and check.status in ("fail", "warn"):
            lines.append(f"        {'':<{width}}  fix: {_scrub(check.hint, secrets)}")
    counts = {s: sum(c.status == s for c in checks) for s in ("pass", "warn", "fail", "skip")}
    verdict = " - FAILED" if counts["fail"] else " - OK"
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items() if n) + verdict)
    return "\n".join(lines)


def to_json(checks: list[Check], secrets: list[str]) -> str:
    rows = [{k: _scrub(v, secrets) for k, v in asdict(c).items()} for c in checks]
    return json.dumps({"ok": not any(c.status == "fail" for c in checks), "checks": rows}, indent=2)


def run(path: str, *, as_json: bool = False) -> int:
    """The whole doctor: print the report, return 0 when no check failed, else 1."""
    checks: list[Check]
    first, config = check_config(path)
    checks = [first]
    secrets: list[str] = []
    configure("error", "json")  # component logs (token issued, ...) stay off the report, on stderr
    if config is not None:
        secrets = sorted(set(secrets_of(config)), key=len, reverse=True)
        try:
            checks += asyncio.run(run_checks(config))
        except ConfigError as exc:  # e.g. unreadable tls files, found only when a context is made
            checks.append(Check("config", "fail", "; ".join(exc.problems), "fix the tls file paths"))
    print(to_json(checks, secrets) if as_json else render(path, checks, secrets))
    return 1 if any(c.status == "fail" for c in checks) else 0


def add_parser(commands: Any) -> None:
    """Register ``doctor`` on the CLI's subcommands."""
    doctor = commands.add_parser(
        "doctor", help="Check config, state volume, Salesforce access and every sink (exit 0: none failed)."
    )
    doctor.add_argument("-c", "--config", required=True, help="YAML config file.")
    doctor.add_argument("--json", action="store_true", help="Print JSON instead of text.")
