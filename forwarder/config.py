"""The configuration file: one YAML document, validated by pydantic, with ``${ENV}`` interpolation.

Every error names the file and its path in the file (``config/x.yaml: sinks[1].token: field required``),
and all errors are reported at once. Secret values never appear in an error message.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from forwarder.alerts.document import DATASET as ALERT_DATASET
from forwarder.errors import ConfigError
from forwarder.packaged import packaged_path
from forwarder.salesforce.auth import SalesforceConfig
from forwarder.settings import Settings
from forwarder.sources.eventlogfile import EventLogFileConfig
from forwarder.sources.loginhistory import LoginHistoryConfig
from forwarder.sources.setupaudittrail import SetupAuditTrailConfig
from forwarder.sources.streaming import StreamingConfig
from sinks.datadog import DatadogConfig
from sinks.file import FileSinkConfig
from sinks.splunk_hec import SplunkHecConfig
from sinks.syslog import SyslogConfig
from sinks.webhook import WebhookConfig

#: The rule engine's journal consumer name (forwarder.alerts.consumer.CONSUMER): no sink may take it.
ALERT_CONSUMER = "alert-rules"

AnySinkConfig = Annotated[
    SplunkHecConfig | DatadogConfig | SyslogConfig | FileSinkConfig | WebhookConfig,
    Field(discriminator="type"),
]

_SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def parse_size(value: Any) -> int:
    """``2GiB``, ``500MB``, ``1048576`` -> bytes."""
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(value))
    if not match or match.group(2).upper() not in _SIZE_UNITS:
        raise ValueError(f"not a size: {value!r} (use e.g. 500MB or 2GiB)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).upper()])


class SourcesConfig(Settings):
    streaming: StreamingConfig = Field(
        default_factory=StreamingConfig, description="Real-Time Event Monitoring over CometD."
    )
    eventlogfile: EventLogFileConfig = Field(
        default_factory=EventLogFileConfig, description="EventLogFile CSV polling."
    )
    setupaudittrail: SetupAuditTrailConfig = Field(
        default_factory=SetupAuditTrailConfig, description="SetupAuditTrail polling."
    )
    loginhistory: LoginHistoryConfig = Field(
        default_factory=LoginHistoryConfig,
        description="LoginHistory polling, for orgs without Event Monitoring (off by default).",
    )


class StateConfig(Settings):
    path: Path = Field(
        Path("/var/lib/sf-forwarder/state.db"), description="SQLite journal file (on a volume)."
    )
    max_bytes: int = Field(2 * 2**30, gt=0, description="Journal size cap, e.g. 2GiB.")
    when_full: Literal["block", "drop_oldest"] = Field(
        "block", description="At the cap: block sources (backpressure) or drop the oldest events (counted)."
    )
    synchronous: Literal["normal", "full"] = Field(
        "normal",
        description="SQLite durability: normal survives process crashes (kill -9); full also survives power "
        "loss, at a cost in append speed (after a power loss with normal, events and their source position "
        "roll back together, so the sources read that tail again).",
    )

    @field_validator("max_bytes", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int:
        return parse_size(value)


class ServerConfig(Settings):
    listen: str = Field("0.0.0.0:9108", description="host:port for /metrics, /healthz and /readyz.")

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"expected host:port, got {value!r}")
        return value


class LoggingConfig(Settings):
    level: Literal["debug", "info", "warning", "error"] = Field("info", description="Minimum log level.")
    format: Literal["json", "console", "auto"] = Field(
        "auto", description="json, console, or auto (console on a TTY, json otherwise)."
    )


class NormalizeConfig(Settings):
    raw: Literal["full", "none"] = Field(
        "full", description="Keep the original record under salesforce.raw (full) or not (none)."
    )


class RulesConfig(Settings):
    paths: list[Path] = Field(
        default_factory=list, description="Folders (or files) of alert rule YAML; empty: no rule engine."
    )
    allowed_lateness: timedelta = Field(
        timedelta(hours=2),
        description="Events older than their lane's newest @timestamp by more are not evaluated (counted).",
    )
    max_groups: int = Field(10_000, gt=0, description="Windows/groups kept per rule; the oldest is evicted.")
    builtin: bool = Field(
        False, description="Also run the default rules shipped with sf-forwarder, loaded before paths."
    )

    @model_validator(mode="after")
    def _builtin_first(self) -> RulesConfig:
        """The shipped rules join ``paths`` (first), so whatever loads ``paths`` (run, check-config, doctor,
        rules test -c) loads them too, wherever sf-forwarder is installed (forwarder/packaged.py)."""
        shipped = packaged_path("rules")
        if self.builtin and shipped not in self.paths:
            self.paths.insert(0, shipped)
        return self


class Config(Settings):
    """The whole file."""

    salesforce: SalesforceConfig = Field(description="The org to read and how to authenticate.")
    sources: SourcesConfig = Field(default_factory=SourcesConfig, description="What to read.")
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig, description="Normalisation options.")
    rules: RulesConfig = Field(default_factory=RulesConfig, description="Alert rules.")
    sinks: list[AnySinkConfig] = Field(min_length=1, description="Where events go; names must be unique.")
    state: StateConfig = Field(default_factory=StateConfig, description="The durable journal.")
    server: ServerConfig = Field(default_factory=ServerConfig, description="Metrics and health endpoints.")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Logs.")

    @model_validator(mode="after")
    def _page_once(self) -> Config:
        """A webhook sink without a route takes every ``kind: alert`` event, Salesforce's own Threat Detection
        events included; when rules run, those events also become rule alerts (the default rules pass them
        through), so such a sink then takes the rules' alerts only: one page per incident, not two."""
        if self.rules.paths:
            for index, sink in enumerate(self.sinks):
                if isinstance(sink, WebhookConfig) and "route" not in sink.model_fields_set:
                    route = sink.route.model_copy(update={"datasets": [ALERT_DATASET]})
                    self.sinks[index] = sink.model_copy(update={"route": route})
        return self


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\$")


def _interpolate(node: Any, where: str, problems: list[str]) -> Any:
    """Replace ``${NAME}`` / ``${NAME:-default}`` in every string; ``$$`` is a literal ``$``."""
    if isinstance(node, dict):
        return {k: _interpolate(v, f"{where}.{k}" if where else str(k), problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, f"{where}[{i}]", problems) for i, v in enumerate(node)]
    if not isinstance(node, str) or "$" not in node:
        return node

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name, default)
        if value is None:
            problems.append(f"{where}: environment variable {name} is not set")
            return ""
        return value

    return _ENV.sub(substitute, node)


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(error: Any, data: Any) -> str:
    loc = tuple(p for p in error["loc"] if not _is_union_tag(p))
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        msg = "unknown key"
    elif error["type"] == "missing":
        msg = "field required"
    elif error["type"] == "union_tag_invalid":
        msg = f"unknown type {error['input'].get('type')!r}" if isinstance(error["input"], dict) else msg
    return f"{_loc(loc) or '(top level)'}: {msg}"


def _is_union_tag(part: int | str) -> bool:
    """Drop pydantic's discriminator tags (``splunk_hec``) from locations: users never wrote them."""
    return isinstance(part, str) and part in {
        "splunk_hec",
        "datadog",
        "syslog",
        "file",
        "webhook",
        "jwt_bearer",
        "client_credentials",
        "refresh_token",
    }


def _duplicate_sink_names(data: Any) -> list[str]:
    """Sink names are journal consumer ids: two sinks sharing one would share a cursor and lose events."""
    sinks = data.get("sinks") if isinstance(data, dict) else None
    first: dict[str, int] = {}
    problems = []
    for index, sink in enumerate(sinks if isinstance(sinks, list) else []):
        name = sink.get("name") if isinstance(sink, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            problems.append(f"sinks[{index}].name: duplicate sink name {name!r} (also sinks[{first[name]}])")
        first.setdefault(name, index)
    return problems


def parse(data: Any, file: str) -> Config:
    """Validate an already-loaded document; raises ``ConfigError`` listing every problem."""
    problems: list[str] = []
    data = _interpolate(data, "", problems)
    problems += _duplicate_sink_names(data)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems += [_describe(e, data) for e in exc.errors(include_url=False, include_input=True)]
    if problems:
        raise ConfigError(file, problems)
    if any(s.name == ALERT_CONSUMER for s in config.sinks):
        raise ConfigError(
            file, [f"sinks: the name {ALERT_CONSUMER!r} is the alert rule engine's; rename the sink"]
        )
    return config


def load(path: str | Path) -> Config:
    """Read, interpolate and validate a config file; raises ``ConfigError`` naming the file."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(file, [f"cannot read file: {exc.strerror or exc}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(file, [f"{where}invalid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if not isinstance(data, dict):
        raise ConfigError(file, ["(top level): expected a mapping of sections"])
    return parse(data, file)
