"""Traffic data model: what an activity is, the RTEM channel map, and value helpers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from forwarder.testing.simulator import formats as fmt
from forwarder.testing.simulator.people import Place, User

BIG_OBJECT_ID = "000000000000000AAA"  # storage big objects carry a placeholder Id (AppOmni LoginEvent row)
DEFAULT_START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)

#: RTEM stream channel -> storage object (Platform Events Dev Guide v67 "Real-Time Event Monitoring
#: Objects", facts B1); None = stream only.
CHANNELS: dict[str, str | None] = {
    "LoginEventStream": "LoginEvent",
    "LogoutEventStream": "LogoutEvent",
    "LoginAsEventStream": "LoginAsEvent",
    "ApiEventStream": "ApiEvent",
    "LightningUriEventStream": "LightningUriEvent",
    "UriEventStream": "UriEvent",
    "ListViewEventStream": "ListViewEvent",
    "ReportEventStream": "ReportEvent",
    "BulkApiResultEvent": "BulkApiResultEventStore",
    "FileEvent": "FileEventStore",
    "PermissionSetEvent": "PermissionSetEventStore",
    "ApiAnomalyEvent": "ApiAnomalyEventStore",
    "CredentialStuffingEvent": "CredentialStuffingEventStore",
    "ReportAnomalyEvent": "ReportAnomalyEventStore",
    "SessionHijackingEvent": "SessionHijackingEventStore",
    "LoginAnomalyEvent": "LoginAnomalyEventStore",
    "GuestUserAnomalyEvent": "GuestUserAnomalyEventStore",
    "ConcurLongRunApexErrEvent": None,
    "MobileEmailEvent": None,
    "MobileEnforcedPolicyEvent": None,
    "MobileScreenshotEvent": None,
    "MobileTelephonyEvent": None,
}

#: Storage-only objects: queryable, never streamed (facts B1).
STORAGE_ONLY = ("IdentityVerificationEvent",)

#: Alert names the attack scenarios are marked with (what the rule engine should raise).
ALERTS = (
    "brute_force_then_success",
    "password_spray",
    "impossible_travel",
    "mass_report_export",
    "bulk_api_exfiltration",
    "admin_privilege_grant",
    "ip_range_change",
    "password_policy_change",
    "login_as",
    "session_hijacking",
    "credential_stuffing",
)

# LoginEventStream.LoginType display value -> ELF LOGIN_TYPE code (Login Event Type v67, facts A6)
LOGIN_TYPE_CODES = {
    "Application": "A",
    "Remote Access 2.0": "i",
    "SAML Sfdc Initiated SSO": "8",
    "Other Apex API": "I",
    "Remote Access Client": "6",
}
# LoginEventStream.Status -> ELF LOGIN_STATUS (Login Event Type v67; LoginHistory Status picklist)
LOGIN_STATUS_CODES = {
    "Success": "LOGIN_NO_ERROR",
    "Invalid Password": "LOGIN_ERROR_INVALID_PASSWORD",
    "Invalid Username": "LOGIN_ERROR_INVALID_USERNAME",
    "Password Lockout": "LOGIN_ERROR_PASSWORD_LOCKOUT",
    "Failed: Missing Consumer Key Parameter": "LOGIN_OAUTH_NO_CONSUMER",
}


@dataclass(frozen=True)
class Activity:
    """One thing that happened in the org, in every form Salesforce exposes it.

    ``channel``/``payload``: the CometD event (``/event/X`` and its ``data.payload``); ``objects``: SOQL
    object name -> record fields (RTEM storage object, LoginHistory, SetupAuditTrail), REST-formatted;
    ``elf``: EventLogFile EventType -> row (column -> CSV string), in column order; ``alert``: the alert
    an attack scenario should raise.
    """

    kind: str
    at: datetime
    user: str
    channel: str | None = None
    payload: dict[str, Any] | None = None
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    elf: dict[str, dict[str, str]] = field(default_factory=dict)
    scenario: str = "baseline"
    alert: str | None = None

    @property
    def event_identifier(self) -> str | None:
        return None if self.payload is None else self.payload.get("EventIdentifier")


@dataclass
class Session:
    login_key: str
    session_key: str
    ip: str
    place: Place
    browser: tuple[str, str, str, int]


@dataclass(frozen=True)
class Ctx:
    user: User
    at: datetime
    session: Session
    request_id: str
    event_id: str


def mark(activity: Activity, alert: str) -> Activity:
    return Activity(
        activity.kind,
        activity.at,
        activity.user,
        activity.channel,
        activity.payload,
        activity.objects,
        activity.elf,
        scenario="attacks",
        alert=alert,
    )


def soql_text(select: str, entity: str) -> str:
    """A query text recorded inside an event (never executed)."""
    return f"{select} {entity}"


def csv_value(value: Any) -> str:
    return "" if value is None else str(value)


_STREAM_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def storage_record(payload: dict[str, Any]) -> dict[str, Any]:
    """RTEM storage-object record: the stream fields with REST datetimes (``+0000``, facts B3)."""
    out: dict[str, Any] = {"Id": BIG_OBJECT_ID}
    for key, value in payload.items():
        if isinstance(value, str) and _STREAM_DATETIME.fullmatch(value):
            value = fmt.rest_datetime(fmt.parse_datetime(value))
        out[key] = value
    return out
