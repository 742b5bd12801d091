"""The normalised, ECS-aligned security event, and the JSON document form that the journal and sinks use.

Sources produce ``Record``s; ``forwarder.normalize`` turns each into a ``SecurityEvent``; the journal stores
``SecurityEvent.to_doc()`` (a plain JSON-ready dict with ECS dotted names nested); delivery hands those
documents (``EventDoc``) to sinks, so sinks never re-validate pydantic models on the hot path.
Field set: ECS 8.11 (https://www.elastic.co/guide/en/ecs/8.11/ecs-field-reference.html), DESIGN.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

#: An event as stored and delivered: nested ECS dict, e.g. ``{"@timestamp": ..., "event": {"id": ...}}``.
EventDoc = dict[str, Any]

#: ECS version the documents follow (sinks may copy it into ``ecs.version``).
ECS_VERSION = "8.11.0"


# ECS severity 0..100 -> four levels on Elastic's detection-rule bands (low 0-21, medium 22-47, high 48-73,
# critical 74-100: Elastic Security "Rule severity and risk score"), named as both Datadog's log ``status``
# and PagerDuty's Events API v2 ``payload.severity`` name them (critical|error|warning|info).
_SEVERITY_BANDS = ((74, "critical"), (48, "error"), (22, "warning"), (0, "info"))


def severity_level(severity: Any) -> str:
    """critical | error | warning | info from ECS ``event.severity``; anything not a number -> info."""
    value = severity if isinstance(severity, int | float) and not isinstance(severity, bool) else 0
    for floor, level in _SEVERITY_BANDS:
        if value >= floor:
            return level
    return "info"


def get_path(doc: EventDoc, dotted: str, default: Any = None) -> Any:
    """``get_path(doc, "event.dataset")``: the value at an ECS dotted path, or ``default``."""
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def format_timestamp(value: datetime) -> str:
    """ECS ``date`` text: UTC, millisecond precision, ``Z`` suffix (``2022-09-13T05:22:43.429Z``).

    Salesforce times carry milliseconds at most, so nothing is lost; one format for every path keeps
    ``normalize_doc`` and ``SecurityEvent.to_doc()`` byte-identical.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.utcoffset():
        value = value.astimezone(UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str, when_used="json")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EventFields(_Section):
    """ECS ``event.*``."""

    id: str
    kind: str = "event"  # "event" | "alert"
    category: list[str] = Field(default_factory=list)
    type: list[str] = Field(default_factory=list)
    action: str | None = None
    outcome: str | None = None  # "success" | "failure" | "unknown"
    reason: str | None = None
    code: str | None = None
    dataset: str  # "salesforce.login", ...
    provider: str | None = None  # where it came from: "LoginEventStream", "EventLogFile", ...
    module: str = "salesforce"
    severity: int = Field(0, ge=0, le=100)  # 0..100 (ECS numeric severity)
    risk_score: float | None = None
    duration: int | None = None  # nanoseconds (ECS)
    created: Timestamp | None = None
    ingested: Timestamp | None = None


class TargetUser(_Section):
    """ECS ``user.target.*``: the account an admin action or an impersonation was aimed at."""

    id: str | None = None
    name: str | None = None
    email: str | None = None
    full_name: str | None = None


class UserFields(_Section):
    """ECS ``user.*``: the acting Salesforce user (18-character id)."""

    id: str | None = None
    name: str | None = None
    email: str | None = None
    full_name: str | None = None
    roles: list[str] | None = None
    target: TargetUser | None = None
    effective: TargetUser | None = None


class GeoLocation(_Section):
    lat: float
    lon: float


class Geo(_Section):
    """ECS ``*.geo.*``."""

    country_iso_code: str | None = None
    country_name: str | None = None
    city_name: str | None = None
    region_name: str | None = None
    postal_code: str | None = None
    location: GeoLocation | None = None


class SourceFields(_Section):
    """ECS ``source.*``: where the request came from."""

    ip: str | None = None
    geo: Geo | None = None


class OsFields(_Section):
    name: str | None = None


class UserAgentFields(_Section):
    """ECS ``user_agent.*``."""

    original: str | None = None
    name: str | None = None
    os: OsFields | None = None


class UrlFields(_Section):
    """ECS ``url.*``."""

    original: str | None = None
    path: str | None = None
    domain: str | None = None


class HttpMessage(_Section):
    method: str | None = None
    bytes: int | None = None
    status_code: int | None = None
    mime_type: str | None = None
    referrer: str | None = None


class HttpFields(_Section):
    """ECS ``http.*``."""

    request: HttpMessage | None = None
    response: HttpMessage | None = None


class OrganizationFields(_Section):
    id: str | None = None
    name: str | None = None


class RelatedFields(_Section):
    """ECS ``related.*``: every IP and user named anywhere in the event, for pivoting."""

    ip: list[str] = Field(default_factory=list)
    user: list[str] = Field(default_factory=list)


class RuleFields(_Section):
    """ECS ``rule.*`` (alerts and Threat Detection events)."""

    id: str | None = None
    name: str | None = None
    description: str | None = None
    ruleset: str | None = None
    reference: str | None = None


class TlsFields(_Section):
    cipher: str | None = None
    version: str | None = None
    version_protocol: str | None = None


class SecurityEvent(BaseModel):
    """One normalised event (ECS-aligned); fields without an ECS home live under ``salesforce``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    timestamp: Timestamp = Field(alias="@timestamp")
    message: str | None = None
    event: EventFields
    user: UserFields | None = None
    source: SourceFields | None = None
    user_agent: UserAgentFields | None = None
    url: UrlFields | None = None
    http: HttpFields | None = None
    organization: OrganizationFields | None = None
    related: RelatedFields | None = None
    rule: RuleFields | None = None
    tls: TlsFields | None = None
    salesforce: dict[str, Any] = Field(default_factory=dict)

    def to_doc(self) -> EventDoc:
        """The JSON-ready nested dict stored in the journal (None fields omitted)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
