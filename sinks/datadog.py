"""Datadog Logs sink (HTTP intake API v2): JSON arrays of logs carrying the ECS document plus Datadog's
standard attributes, cut to the intake limits, with a counted policy for events older than 18 hours.
Protocol facts: ../shared/reference/sinks-and-protocols.md §2 (docs.datadoghq.com/api/latest/logs/send-logs).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
from pydantic import Field, SecretStr, field_validator, model_validator

from forwarder import metrics
from forwarder.errors import PermanentError
from forwarder.events import EventDoc, severity_level
from forwarder.settings import TlsConfig
from sinks import SinkConfig, SinkLimits
from sinks._http import HttpClient, check_http_url, gzip_off_loop, http_outcome, raise_for

# Intake limits (Datadog "Send logs"): 5 MB uncompressed per payload, 1 MB per log, 1000 entries per array.
# We cut batches at 4.25 MB like Vector's datadog_logs sink, leaving room for the array framing.
MAX_ENTRIES = 1000
MAX_PAYLOAD_BYTES = 4_250_000
MAX_LOG_BYTES = 1_000_000
#: Datadog accepts logs up to 18 h in the past ("Log Date Remapper"); we act a margin earlier so that a
#: batch retried for a while still lands inside the window.
DEFAULT_MAX_AGE = 17 * 3600.0

LatePolicy = Literal["restamp", "keep", "dead_letter"]

_RESERVED = ("ddsource", "service", "hostname", "ddtags", "status", "timestamp", "message")
_KEPT_WHEN_TRUNCATED = ("@timestamp", "event", "usr", "evt", "network", "organization", "forwarder")


class DatadogConfig(SinkConfig):
    """A Datadog organisation's log intake."""

    type: Literal["datadog"] = Field(description="Sink type.")
    api_key: SecretStr = Field(description="Datadog API key (sent as DD-API-KEY).")
    site: str = Field(
        "datadoghq.com",
        description="Datadog site: datadoghq.com, us3.datadoghq.com, us5.datadoghq.com, datadoghq.eu, "
        "ap1.datadoghq.com, ap2.datadoghq.com, uk1.datadoghq.com, ddog-gov.com, us2.ddog-gov.com.",
    )
    url: str | None = Field(None, description="Explicit intake URL (proxy, test receiver); overrides site.")
    service: str = Field("salesforce", description="The 'service' of every log.")
    hostname: str = Field(default_factory=socket.gethostname, description="The 'hostname' of every log.")
    tags: list[str] = Field(default_factory=list, description="ddtags added to every log, e.g. [env:prod].")
    late_policy: LatePolicy = Field(
        "restamp",
        description="Events older than max_age: 'restamp' sends them with timestamp=now and the original "
        "time in forwarder.original_timestamp (and @timestamp); 'keep' sends the original time (Datadog "
        "may drop them); 'dead_letter' keeps them in the dead letters. Every case is counted.",
    )
    max_age: float = Field(DEFAULT_MAX_AGE, gt=0, description="Seconds after which an event counts as late.")
    compression: bool = Field(True, description="gzip request bodies (Datadog recommends it).")
    timeout: float = Field(60.0, gt=0, description="Seconds one request may take in total.")
    connect_timeout: float = Field(10.0, gt=0, description="Seconds to establish a connection.")
    tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS client options.")

    _url = field_validator("url")(lambda v: v if v is None else check_http_url(v))

    @model_validator(mode="after")
    def _batch_within_intake_limits(self) -> DatadogConfig:
        # Delivery applies ``batch`` overrides as given, so refuse ones the intake would refuse.
        if (self.batch.max_events or 0) > MAX_ENTRIES:
            raise ValueError(f"batch.max_events: Datadog takes at most {MAX_ENTRIES} logs per request")
        if (self.batch.max_bytes or 0) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"batch.max_bytes: keep it at most {MAX_PAYLOAD_BYTES} (intake limit 5 MB)")
        return self

    def intake_url(self) -> str:
        """``https://http-intake.logs.<site>/api/v2/logs`` unless ``url`` is given."""
        return self.url or f"https://http-intake.logs.{self.site}/api/v2/logs"

    def validate_url(self) -> str:
        """The API-key check endpoint (``/api/v1/validate``, as the Agent and Vector use)."""
        if self.url:
            parts = urlsplit(self.url)
            return f"{parts.scheme}://{parts.netloc}/api/v1/validate"
        return f"https://api.{self.site}/api/v1/validate"


# --- pure encoding ---------------------------------------------------------------------------------------


def standard_attributes(doc: EventDoc) -> dict[str, Any]:
    """Datadog standard attributes beside the ECS fields, so Cloud SIEM rules work out of the box
    (docs.datadoghq.com/standard-attributes: usr.*, network.client.ip, evt.name, evt.outcome).
    Straight-line code with the common shapes first on purpose: it runs once per event."""
    out: dict[str, Any] = {}
    user, source, event = doc.get("user"), doc.get("source"), doc.get("event")
    if isinstance(user, dict):
        uid, name, email = user.get("id"), user.get("name"), user.get("email")
        if email is None and uid is not None and name is not None:
            out["usr"] = {"id": uid, "name": name}
        elif uid is not None or name is not None or email is not None:
            pairs = (("id", uid), ("name", name), ("email", email))
            out["usr"] = {key: value for key, value in pairs if value is not None}
    if isinstance(source, dict) and (ip := source.get("ip")) is not None:
        out["network"] = {"client": {"ip": ip}}
    if isinstance(event, dict):
        action, outcome = event.get("action"), event.get("outcome")
        if action is not None and outcome is not None:
            out["evt"] = {"name": action, "outcome": outcome}
        elif action is not None:
            out["evt"] = {"name": action}
        elif outcome is not None:
            out["evt"] = {"outcome": outcome}
    return out


def event_time(doc: EventDoc) -> datetime | None:
    """The event's ``@timestamp`` as an aware datetime, or None."""
    raw = doc.get("@timestamp")
    try:
        moment = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo else None


def log_entry(config: DatadogConfig, doc: EventDoc, now: datetime) -> dict[str, Any]:
    """One Datadog log: the ECS document, then standard attributes, reserved attributes and the time
    policy on top (``LogEncoder`` writes the same JSON faster)."""
    return {**doc, **entry_attributes(config, doc, now)}


def entry_attributes(
    config: DatadogConfig, doc: EventDoc, now: datetime, tags: str | None = None
) -> dict[str, Any]:
    """What ``log_entry`` adds to the document. ``message`` is added only when the document has none."""
    extra = standard_attributes(doc)
    found = doc.get("event")
    event: dict[str, Any] = found if isinstance(found, dict) else {}
    dataset = event.get("dataset")
    extra.update(
        ddsource="salesforce",
        service=config.service,
        hostname=config.hostname,
        ddtags=tags if tags is not None else ddtags(config, dataset),
        status=severity_level(event.get("severity")),
    )
    if not doc.get("message"):
        extra["message"] = str(event.get("action") or dataset or "salesforce event")
    moment = event_time(doc)
    # Datadog reads the official time from ``timestamp`` first; epoch milliseconds are accepted.
    extra["timestamp"] = int((moment or now).timestamp() * 1000)
    if moment is not None and (now - moment).total_seconds() > config.max_age:
        _apply_late_policy(config, extra, moment, now)
    return extra


def ddtags(config: DatadogConfig, dataset: Any) -> str:
    """The configured tags plus ``dataset:<event.dataset>``, comma-separated as the intake wants."""
    return ",".join([*config.tags, *([f"dataset:{dataset}"] if dataset else [])])


def _apply_late_policy(config: DatadogConfig, entry: dict[str, Any], moment: datetime, now: datetime) -> None:
    metrics.datadog_late_events.labels(config.name, config.late_policy).inc()
    if config.late_policy == "dead_letter":
        raise PermanentError(
            f"datadog: event from {moment.isoformat()} is older than max_age ({config.max_age:g}s)"
        )
    entry["forwarder"] = {"late": True, "original_timestamp": moment.isoformat()}
    if config.late_policy == "restamp":
        entry["timestamp"] = int(now.timestamp() * 1000)


def fit_log(entry: dict[str, Any], limit: int = MAX_LOG_BYTES) -> tuple[bytes, bool]:
    """The encoded log, truncated to ``limit`` bytes with ``forwarder.truncated`` set when over it: the
    reserved and identifying attributes are kept whole, the rest of the document goes as a cut-off JSON
    prefix in ``message`` (Datadog would otherwise cut the log at 1 MB itself, without saying so)."""
    full = orjson.dumps(entry)
    if len(full) <= limit:
        return full, False
    slim = {k: entry[k] for k in (*_RESERVED, *_KEPT_WHEN_TRUNCATED) if k in entry}
    prior = slim.get("forwarder")
    slim["forwarder"] = {
        **(prior if isinstance(prior, dict) else {}),
        "truncated": True,
        "original_bytes": len(full),
    }
    slim["message"] = ""
    budget = limit - len(orjson.dumps(slim))
    if budget < 0:
        raise PermanentError("datadog: event identity alone exceeds the 1 MB log limit")
    text = full[:budget].decode("utf-8", "ignore")
    while True:
        slim["message"] = text
        encoded = orjson.dumps(slim)
        if len(encoded) <= limit:
            return encoded, True
        text = text[: max(0, len(text) - (len(encoded) - limit) - 8)]  # JSON escaping grew it


_SEVERITY_TYPES = (int, float, type(None))
_fromisoformat = datetime.fromisoformat
_dumps = orjson.dumps


class LogEncoder:
    """Writes ``log_entry()`` as bytes without merging dicts, for the common case: a document with a
    message and a time inside the window and none of our attribute names. The document is serialised once
    and our attributes are appended; the constant ones are cached. Returns None for every other case, which
    then takes the exact ``log_entry`` path (late events are counted there)."""

    _OURS = frozenset((*_RESERVED, "usr", "network", "evt", "forwarder")) - {"message"}  # message: the doc's
    _MAX_CACHED = 4096  # keys are bounded (datasets x severities 0-100); a guard, not a tuning knob

    def __init__(self, config: DatadogConfig) -> None:
        self._config = config
        constant = {"ddsource": "salesforce", "service": config.service, "hostname": config.hostname}
        self._constant = b"," + orjson.dumps(constant)[1:-1]
        self._tag_status: dict[tuple[Any, int | float | None], bytes] = {}
        self._max_age = config.max_age

    def __call__(self, doc: EventDoc, now: float) -> bytes | None:
        """The encoded log, or None for the exact path; ``now`` in epoch seconds. Straight-line code with
        ``event_time`` inlined: this runs once per event and was most of the sink's CPU."""
        event = doc.get("event")
        if type(event) is not dict or not doc.get("message") or not self._OURS.isdisjoint(doc):
            return None
        raw, severity = doc.get("@timestamp"), event.get("severity")
        if type(raw) is not str or not isinstance(severity, _SEVERITY_TYPES):
            return None
        try:
            moment = _fromisoformat(raw)
        except ValueError:
            return None
        if moment.tzinfo is None:
            return None
        stamp = moment.timestamp()
        if now - stamp > self._max_age:
            return None
        key = (event.get("dataset"), severity)
        try:
            tag_status = self._tag_status.get(key) or self._cache(key)
        except TypeError:  # an unhashable dataset: take the exact path
            return None
        standard = standard_attributes(doc)
        return b"".join(
            (
                _dumps(doc)[:-1],
                self._constant,
                tag_status,
                b',"timestamp":%d' % int(stamp * 1000),
                b"," + _dumps(standard)[1:-1] if standard else b"",
                b"}",
            )
        )

    def _cache(self, key: tuple[Any, int | float | None]) -> bytes:
        if len(self._tag_status) >= self._MAX_CACHED:
            self._tag_status.clear()
        members = {"ddtags": ddtags(self._config, key[0]), "status": severity_level(key[1])}
        value = self._tag_status[key] = b"," + orjson.dumps(members)[1:-1]
        return value


def _json_array(items: Sequence[bytes]) -> bytes:
    """``[a,b,...]`` with one copy of the payload: the brackets go onto the end items (a few KB), not
    around the joined body (two more copies of up to 4.25 MB)."""
    if len(items) == 1:
        return b"[%s]" % items[0]
    return b",".join([b"[" + items[0], *items[1:-1], items[-1] + b"]"])


def _utc_now() -> datetime:
    return datetime.now(UTC)


# --- the sink ----------------------------------------------------------------------------------------------


class DatadogSink:
    """Sends JSON arrays of logs to the Datadog intake; a 413 asks delivery to split the batch."""

    def __init__(
        self,
        config: DatadogConfig,
        client: HttpClient | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.limits = SinkLimits(
            max_events=min(config.batch.max_events or MAX_ENTRIES, MAX_ENTRIES),
            max_bytes=min(config.batch.max_bytes or MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES),
            max_wait=config.batch.max_wait if config.batch.max_wait is not None else 1.0,
        )
        # The fast path only needs epoch seconds: time.time() is several times cheaper than an aware now().
        self._clock = clock or _utc_now
        self._now_seconds: Callable[[], float] = (
            time.time if clock is None else lambda: self._clock().timestamp()
        )
        self._fast = LogEncoder(config)
        self._http = client or HttpClient(
            config.tls, config.timeout, config.connect_timeout, config.concurrency
        )

    def encode(self, event: EventDoc) -> bytes:
        """One log entry, at most 1 MB (truncated and flagged above it)."""
        encoded, entry = self._fast(event, self._now_seconds()), None
        if encoded is None:
            entry = log_entry(self.config, event, self._clock())
            encoded = orjson.dumps(entry)
        if len(encoded) <= MAX_LOG_BYTES:
            return encoded
        # The same entry when there is one: building it again would count a late event twice.
        encoded, _ = fit_log(entry if entry is not None else log_entry(self.config, event, self._clock()))
        metrics.datadog_truncated_events.labels(self.name).inc()
        return encoded

    async def send(self, batch: Sequence[bytes]) -> None:
        """POST one JSON array; 2xx ok, 408/429/5xx retry, 413 split, 401/403 pause, other 4xx permanent."""
        if not batch:
            return
        body = _json_array(batch)
        headers = {"DD-API-KEY": self.config.api_key.get_secret_value(), "Content-Type": "application/json"}
        if self.config.compression:
            body = await gzip_off_loop(body)
            headers["Content-Encoding"] = "gzip"
        response = await self._http.request("POST", self.config.intake_url(), headers, body, what="datadog")
        raise_for(http_outcome(response.status), response, "datadog")

    async def check(self) -> None:
        """``GET /api/v1/validate`` with the API key: 200 means the intake will take our logs."""
        headers = {"DD-API-KEY": self.config.api_key.get_secret_value()}
        response = await self._http.request(
            "GET", self.config.validate_url(), headers, what="datadog validate"
        )
        raise_for(http_outcome(response.status), response, "datadog validate")

    async def close(self) -> None:
        """Close the HTTP session; idempotent."""
        await self._http.close()
