"""syslog sink: RFC 5424 (default) or RFC 3164 messages carrying the event as JSON or CEF, over UDP, TCP
(octet counting or LF framing), TLS with optional mutual TLS, or RELP (acknowledged, plain or in TLS).
Layout and field mapping: docs/syslog.md.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import Field, field_validator, model_validator

from forwarder import __version__, metrics
from forwarder.errors import PermanentError
from forwarder.events import EventDoc, get_path
from forwarder.settings import TlsConfig
from sinks import SinkConfig, SinkLimits

from . import rfc5424 as r
from .cef import encode_cef, lookup
from .relp import DEFAULT_WINDOW, RelpTransport
from .transport import DatagramTransport, Endpoint, StreamTransport, Transport, client_ssl_context

__all__ = ["DEFAULT_SD_PARAMS", "SyslogConfig", "SyslogSink"]

#: PARAM-NAME → ECS path of the fields copied into STRUCTURED-DATA, so a SIEM can route and de-duplicate
#: (``id``) without parsing MSG.
DEFAULT_SD_PARAMS: dict[str, str] = {
    "id": "event.id",
    "dataset": "event.dataset",
    "kind": "event.kind",
    "action": "event.action",
    "outcome": "event.outcome",
    "severity": "event.severity",
    "user": "user.name",
    "src": "source.ip",
    "org": "organization.id",
}
#: An SD PARAM-VALUE is cut to this many characters: SD identifies an event, MSG carries it whole.
SD_VALUE_MAX = 256
#: Default size limits: RFC 5426 §3.2 (UDP: every receiver SHOULD take 2048 octets) and RFC 5425 §4.3.1
#: (TLS: SHOULD take 8192, also rsyslog's default maxMessageSize). Larger limits must match the receiver.
UDP_DEFAULT_MAX, STREAM_DEFAULT_MAX = 2048, 8192
#: The largest UDP payload over IPv4 (65535 - 8 byte UDP header - 20 byte IP header).
UDP_PAYLOAD_MAX = 65_507


class SyslogConfig(SinkConfig):
    """A syslog destination."""

    type: Literal["syslog"]
    address: str = Field(
        description="udp://host:port, tcp://host:port, tls://host:port (6514 for TLS), or relp://host:port "
        "and relp+tls://host:port for RELP (rsyslog imrelp: every message acknowledged; no standard port)."
    )
    format: Literal["rfc5424", "rfc3164"] = Field("rfc5424", description="Syslog header format.")
    framing: Literal["octet_counting", "lf"] = Field(
        "octet_counting",
        description="TCP/TLS framing (RFC 6587): octet counting (safe for any content) or LF-terminated. "
        "Irrelevant for RELP, which frames every message itself.",
    )
    message: Literal["json", "cef"] = Field("json", description="MSG payload: the ECS event as JSON, or CEF.")
    facility: int = Field(
        20,
        ge=0,
        le=23,
        description="Facility name (auth, authpriv, local0..local7, ...) or number; default local4 keeps "
        "Salesforce events apart from the host's own auth logs.",
    )
    app_name: str = Field("sf-forwarder", min_length=1, description="APP-NAME (RFC 3164: the TAG).")
    hostname: str | None = Field(None, description="HOSTNAME field; default: this machine's host name.")
    sd_id: str = Field(
        "sfforwarder@32473",
        description="SD-ID of our STRUCTURED-DATA element: name@<IANA private enterprise number>. 32473 is "
        "the number RFC 5612 reserves for documentation; set your organisation's own if it has one.",
    )
    sd_params: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_SD_PARAMS),
        description="STRUCTURED-DATA parameters: PARAM-NAME to ECS dotted path (RFC 5424 only).",
    )
    cef_vendor: str = Field("Salesforce", description="CEF Device Vendor.")
    cef_product: str = Field("sf-forwarder", description="CEF Device Product.")
    max_message_bytes: int | None = Field(
        None,
        ge=480,
        le=1_000_000,
        description="Largest message in bytes before it is shrunk (salesforce.raw dropped) or cut, flagged "
        "either way; default 2048 on UDP, 8192 on TCP/TLS/RELP. Must not exceed the receiver's limit.",
    )
    connect_timeout: float = Field(10.0, gt=0, description="Seconds to connect (and finish a TLS handshake).")
    write_timeout: float = Field(
        30.0, gt=0, description="Seconds one batch write may take; for RELP, until every message is acked."
    )
    relp_window: int = Field(
        DEFAULT_WINDOW,
        ge=1,
        le=1024,
        description="RELP only: messages sent ahead of their acknowledgements (omrelp's windowSize; 128 "
        "as in librelp). Larger is faster on slow links and resends more after a lost session.",
    )
    tls: TlsConfig = Field(
        default_factory=TlsConfig, description="TLS options for tls:// and relp+tls:// addresses."
    )

    @field_validator("facility", mode="before")
    @classmethod
    def _facility_name(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.isdigit():
            if value.lower() not in r.FACILITIES:
                raise ValueError(f"unknown facility {value!r}; use one of {', '.join(r.FACILITIES)}")
            return r.FACILITIES[value.lower()]
        return value

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        Endpoint.parse(value)
        return value

    @field_validator("sd_id")
    @classmethod
    def _sd_id(cls, value: str) -> str:
        if not r.is_sd_id(value):
            raise ValueError(
                'sd_id must be name@<enterprise number>, printable ASCII without = ] " or space, '
                "at most 32 characters (RFC 5424 §6.3.2)"
            )
        return value

    @field_validator("sd_params")
    @classmethod
    def _sd_params(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [name for name in value if not r.is_sd_name(name)]
        if bad:
            raise ValueError(f'invalid PARAM-NAME {bad}: 1-32 printable ASCII, no = ] " or space')
        return value

    @model_validator(mode="after")
    def _fits_the_transport(self) -> SyslogConfig:
        if self.tls.cert_file and not self.endpoint.tls:
            raise ValueError("tls.cert_file is set but the address is not tls:// or relp+tls://")
        if self.address.startswith("udp://") and (self.max_message_bytes or 0) > UDP_PAYLOAD_MAX:
            raise ValueError(f"max_message_bytes: a UDP datagram carries at most {UDP_PAYLOAD_MAX} bytes")
        return self

    @property
    def endpoint(self) -> Endpoint:
        """The parsed address."""
        return Endpoint.parse(self.address)


class SyslogSink:
    """Encodes each event as one framed syslog message and writes a batch in one write."""

    def __init__(self, config: SyslogConfig, *, clock: Callable[[], datetime] | None = None) -> None:
        self.name = config.name
        self.config = config
        endpoint = config.endpoint
        self._stream = endpoint.scheme != "udp"
        self._framed = endpoint.scheme in ("tcp", "tls")  # RELP carries the bare message (its own DATALEN)
        self._lf = self._framed and config.framing == "lf"
        self._max = config.max_message_bytes or (STREAM_DEFAULT_MAX if self._stream else UDP_DEFAULT_MAX)
        self._hostname = config.hostname or socket.gethostname()
        self._procid = str(os.getpid())
        self._fixed = r.fixed_fields(self._hostname, config.app_name, self._procid)
        self._now = clock or (lambda: datetime.now(UTC))
        self.limits = SinkLimits(
            max_events=config.batch.max_events or 500,
            max_bytes=config.batch.max_bytes or 1_000_000,
            max_wait=config.batch.max_wait if config.batch.max_wait is not None else 1.0,
        )
        self._transport = self._make_transport(endpoint)
        self._sd_paths = tuple((name, tuple(path.split("."))) for name, path in config.sd_params.items())

    def _make_transport(self, endpoint: Endpoint) -> Transport:
        if not self._stream:
            return DatagramTransport(endpoint)
        context = client_ssl_context(self.config.tls, f"sinks.{self.name}") if endpoint.tls else None
        timeouts = (self.config.connect_timeout, self.config.write_timeout)
        if endpoint.scheme in ("relp", "relp+tls"):
            return RelpTransport(self.name, endpoint, context, *timeouts, window=self.config.relp_window)
        return StreamTransport(self.name, endpoint, context, *timeouts)

    def encode(self, event: EventDoc) -> bytes:
        """One message, framed for the transport: ``LEN SP MSG`` (octet counting, RFC 6587 §3.4.1),
        ``MSG LF`` (RFC 6587 §3.4.2), or bare: the datagram (RFC 5426) or a RELP command's DATA."""
        message = self.message(event)
        if not self._framed:
            return message
        if self._lf:
            return message + b"\n"
        return b"%d %s" % (len(message), message)

    def message(self, event: EventDoc) -> bytes:
        """The unframed syslog message, within the size limit."""
        now = self._now()
        body = self._body(event, now)
        whole = self._head(event, now, None) + b" " + body
        if len(whole) <= self._max:
            return whole
        return self._shrink(event, now, len(whole))

    async def send(self, batch: Sequence[bytes]) -> None:
        """Write the batch. Over UDP, TCP and TLS syslog has no acknowledgement: success means the bytes left
        for the kernel (reference §3.3). Over RELP success means the receiver acknowledged every message."""
        await self._transport.write(batch)

    async def check(self) -> None:
        """Pass on a live, quiet connection; otherwise connect (completing TLS and watching for a refused
        client certificate; for RELP opening a session) and disconnect (RELP keeps the session). Raises
        ``RetryableError`` when the receiver is unreachable or refuses us."""
        await self._transport.probe()

    async def close(self) -> None:
        await self._transport.close()

    def _shrink(self, event: EventDoc, now: datetime, size: int) -> bytes:
        # First drop salesforce.raw (a copy of what the ECS fields already hold), which keeps JSON valid;
        # only if that is not enough is the message cut at a character boundary. Both are flagged in SD.
        if self.config.message == "json" and isinstance(get_path(event, "salesforce.raw"), dict | list | str):
            slim = _without_raw(event)
            head = self._head(event, now, ("raw_dropped", size))
            whole = head + b" " + self._body(slim, now)
            if len(whole) <= self._max:
                metrics.syslog_truncated.labels(self.name, "raw_dropped").inc()
                return whole
            event = slim
        head = self._head(event, now, ("cut", size))
        metrics.syslog_truncated.labels(self.name, "cut").inc()
        return r.cut_utf8(head + b" " + self._body(event, now), self._max)

    def _body(self, event: EventDoc, now: datetime) -> bytes:
        if self.config.message == "cef":
            cef = encode_cef(event, self.config.cef_vendor, self.config.cef_product, __version__, now)
            return cef.encode("utf-8", "replace")  # a lone surrogate must not make the event unsendable
        try:
            # No BOM: RFC 5424 allows MSG-ANY, and rsyslog keeps a BOM inside the message (reference §4.1).
            return orjson.dumps(event)
        except TypeError as exc:  # a value JSON cannot hold: this event can never be sent
            raise PermanentError(f"cannot encode event as JSON: {exc}") from None

    def _head(self, event: EventDoc, now: datetime, truncated: tuple[str, int] | None) -> bytes:
        prival = r.pri(self.config.facility, r.syslog_severity(lookup(event, ("event", "severity"))))
        if self.config.format == "rfc3164":
            moment = r.parse_timestamp(event.get("@timestamp"), now)
            return r.rfc3164_header(
                prival, moment, self._hostname, self.config.app_name, self._procid
            ).encode()
        stamp = r.timestamp(event.get("@timestamp"), now)
        header = r.rfc5424_header(prival, stamp, self._fixed, lookup(event, ("event", "dataset")))
        return f"{header} {self._structured_data(event, truncated)}".encode("utf-8", "replace")

    def _structured_data(self, event: EventDoc, truncated: tuple[str, int] | None) -> str:
        params = [(name, _sd_value(lookup(event, path), self._lf)) for name, path in self._sd_paths]
        params = [(name, value) for name, value in params if value]
        if truncated is not None:
            params += [("truncated", truncated[0]), ("original_size", str(truncated[1]))]
        element = r.structured_data(self.config.sd_id, params)
        if len(element) > self._max // 2 and truncated is not None:
            # Pathologically long SD values must not crowd out the event: keep the id and the flag.
            element = r.structured_data(self.config.sd_id, [p for p in params if p[0] in ("id", "truncated")])
        return element


def _sd_value(value: Any, lf_framing: bool) -> str:
    if value is None or isinstance(value, dict):
        return ""
    if isinstance(value, str):
        text = value
    else:
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    if lf_framing:  # an LF would end the frame early (RFC 6587 §3.4.2)
        text = text.replace("\r", " ").replace("\n", " ")
    return text[:SD_VALUE_MAX]


def _without_raw(event: EventDoc) -> EventDoc:
    salesforce = {k: v for k, v in event.get("salesforce", {}).items() if k != "raw"}
    tags = [*event.get("tags", []), "truncated"] if isinstance(event.get("tags", []), list) else ["truncated"]
    return {**event, "salesforce": salesforce, "tags": tags}
