"""Cross-field rules used by the family tables: outcome, codes, geo, threat scores, audit targets.

Each hook reads the raw payload and edits the document in place; it never raises except ``FieldError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, TypeVar

from forwarder.events import EventDoc
from forwarder.normalize import codes
from forwarder.normalize.engine import FieldError, put
from forwarder.normalize.values import BadValue, as_float, as_str, id18, ip_or_none

F = TypeVar("F", bound=Callable[..., None])


def reads(*keys: str) -> Callable[[F], F]:
    """Marks a hook that only looks at ``keys`` and does nothing when none is present, so a payload shape
    without them skips it (``engine.hooks_for``)."""

    def mark(hook: F) -> F:
        hook.reads = frozenset(keys)  # type: ignore[attr-defined]
        return hook

    return mark


def _text(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value.__class__ is str:  # the common case, decided without a call
        return value or None
    if value is None:
        return None
    try:
        return as_str(value)
    except BadValue as exc:
        raise FieldError(key, str(exc)) from None


def _number(payload: Mapping[str, Any], key: str) -> float | None:
    value = payload.get(key)
    if value is None or value == "":
        return None
    try:
        return as_float(value)
    except BadValue as exc:
        raise FieldError(key, str(exc)) from None


def _outcome(doc: EventDoc, outcome: str, reason: str | None = None) -> None:
    doc["event"]["outcome"] = outcome
    if reason and outcome == "failure":
        doc["event"]["reason"] = reason


@reads("Status", "LOGIN_STATUS", "REQUEST_STATUS")
def login_status(payload: Mapping[str, Any], doc: EventDoc) -> None:
    """Login outcome: streams/objects/LoginHistory ``Status`` is "Success" or the failure reason; ELF
    ``LOGIN_STATUS`` is ``LOGIN_NO_ERROR`` or an error code (facts A6, B2); 2015 ELF rows have neither."""
    status = _text(payload, "Status")
    if status is not None:
        _outcome(doc, "success" if status == "Success" else "failure", status)
        return
    status = _text(payload, "LOGIN_STATUS")
    if status is not None:
        _outcome(doc, "success" if status == "LOGIN_NO_ERROR" else "failure", status)
        return
    request_status(payload, doc)


@reads("REQUEST_STATUS")
def request_status(payload: Mapping[str, Any], doc: EventDoc) -> None:
    """ELF ``REQUEST_STATUS`` S/F/U/A/R/N (Login Event Type doc); blank means not recorded."""
    status = _text(payload, "REQUEST_STATUS")
    outcome = codes.REQUEST_STATUS_OUTCOME.get(status or "")
    if outcome is not None:
        _outcome(doc, outcome, status)


@reads("OperationStatus")
def operation_status(payload: Mapping[str, Any], doc: EventDoc) -> None:
    """RTEM ``OperationStatus`` (Success/Failure) on Uri/LightningUri/ListView events."""
    status = _text(payload, "OperationStatus")
    if status is not None:
        lowered = status.lower()
        outcome = (
            "success" if lowered.startswith("success") else "failure" if "fail" in lowered else "unknown"
        )
        _outcome(doc, outcome, status)


def verification_status(payload: Mapping[str, Any], doc: EventDoc) -> None:
    """IdentityVerificationEvent ``Status``: Succeeded, Initiated/InProgress, or Failed* (AppOmni rows)."""
    status = _text(payload, "Status")
    if status is None:
        return
    if status.startswith(("Succe", "Auto")):
        _outcome(doc, "success")
    elif status.startswith(("Init", "InProgress", "Pending")):
        _outcome(doc, "unknown")
    else:
        _outcome(doc, "failure", status)


def success_flag(payload: Mapping[str, Any], doc: EventDoc) -> None:
    """ELF ``SUCCESS`` (ApexCallout "1"/"0", BulkApi "true"); then ``STATUS_CODE``; then REQUEST_STATUS."""
    flag = _text(payload, "SUCCESS")
    if flag is not None:
        cleaned = flag.strip('"').lower()
        if cleaned in ("1", "true"):
            _outcome(doc, "success")
            return
        if cleaned in ("0", "false"):
            _outcome(doc, "failure", _text(payload, "MESSAGE"))
            return
    status = doc.get("http", {}).get("response", {}).get("status_code")
    if isinstance(status, int):
        _outcome(doc, "success" if status < 400 else "failure", str(status))
        return
    request_status(payload, doc)


def _coordinate(payload: Mapping[str, Any], key: str) -> float | None:
    value = payload.get(key)
    if value.__class__ is float and value - value == 0.0:  # finite float, the stream's type: no call
        return value
    return _number(payload, key)


@reads("LoginLatitude", "LoginLongitude", "Latitude", "Longitude")
def geo(payload: Mapping[str, Any], doc: EventDoc) -> None:
    """``source.geo.location`` needs both coordinates (stream LoginLatitude/Longitude, Latitude/Longitude)."""
    if "LoginLatitude" in payload:
        lat, lon = _coordinate(payload, "LoginLatitude"), _coordinate(payload, "LoginLongitude")
    else:
        lat, lon = _coordinate(payload, "Latitude"), _coordinate(payload, "Longitude")
    if lat is not None and lon is not None and -90 <= lat <= 90 and -180 <= lon <= 180:
        put(doc, ("source", "geo", "location"), {"lat": lat, "lon": lon})


@reads("LOGIN_TYPE")
def elf_login_type(payload: Mapping[str, Any], doc: EventDoc) -> None:
    """ELF ``LOGIN_TYPE`` is a one-letter code; streams give the name: expose the name for both."""
    code = _text(payload, "LOGIN_TYPE")
    if code is not None:
        doc["salesforce"]["login_type"] = codes.login_type_name(code)
        doc["salesforce"]["login_type_code"] = code


def logout_codes(payload: Mapping[str, Any], doc: EventDoc) -> None:
    """ELF Logout: verbose USER_TYPE/SESSION_LEVEL and numeric APP_TYPE/PLATFORM_TYPE to their names."""
    extra = doc["salesforce"]
    for key, name, rule in (
        ("USER_TYPE", "user_type", codes.plain_value),
        ("SESSION_LEVEL", "session_level", codes.session_level),
        ("SESSION_TYPE", "session_type", codes.plain_value),
        ("APP_TYPE", "app_type", codes.app_type_name),
        ("PLATFORM_TYPE", "platform_type", codes.platform_type_name),
    ):
        text = _text(payload, key)
        if text is not None:
            extra[name] = rule(text.removesuffix(".0"))
    platform = extra.get("platform_type")
    if platform and not platform.isdigit():
        put(doc, ("user_agent", "os", "name"), platform)


@reads("TLS_PROTOCOL", "TlsProtocol")
def tls(payload: Mapping[str, Any], doc: EventDoc) -> None:
    text = _text(payload, "TLS_PROTOCOL") or _text(payload, "TlsProtocol")
    parsed = _tls_cached(text) if text else None
    if parsed is not None:
        section = doc.get("tls")
        if section is None:
            section = doc["tls"] = {}
        section["version_protocol"], section["version"] = parsed


@lru_cache(maxsize=256)
def _tls_cached(text: str) -> tuple[str, str] | None:
    return codes.tls_version(text)


def related_ips(*keys: str) -> Any:
    """Extra IPs (SessionHijacking CurrentIp/PreviousIp, FORWARDED_FOR_IP) go to ``related.ip``."""

    @reads(*keys)
    def hook(payload: Mapping[str, Any], doc: EventDoc) -> None:
        found = []
        for key in keys:
            text = _text(payload, key)
            ip = ip_or_none(text) if text else None
            if ip is not None:
                found.append(ip)
        if found:
            doc["salesforce"]["_related_ip"] = found

    return hook


def threat_score(payload: Mapping[str, Any], doc: EventDoc) -> None:
    """Threat Detection ``Score`` (double, 0-1 per the Threat Detection event docs) -> ECS risk/severity.

    ``event.risk_score`` keeps the value; ``event.severity`` is it on ECS's 0-100 scale (values above 1
    are read as already 0-100).
    """
    score = _number(payload, "Score")
    if score is None:
        return
    doc["event"]["risk_score"] = score
    scaled = score * 100 if 0 <= score <= 1 else score
    doc["event"]["severity"] = max(0, min(100, round(scaled)))


def threat_rule(name: str) -> Any:
    """Salesforce-side detections are ECS alerts; ``rule.*`` names the detector and its policy."""

    def hook(payload: Mapping[str, Any], doc: EventDoc) -> None:
        rule = {"name": name, "ruleset": "Salesforce Threat Detection"}
        policy = _text(payload, "PolicyId")
        if policy is not None:
            rule["id"] = policy
        doc["rule"] = rule
        summary = _text(payload, "Summary")
        if summary is not None:
            doc["message"] = summary

    return hook


def login_as_users(payload: Mapping[str, Any], doc: EventDoc) -> None:
    """LoginAs: the delegated (admin) user acts, the user logged in as is the target (LoginAs Event Type
    doc: DELEGATED_USER_ID is "the user who logged in as another user")."""
    user = doc.get("user")
    admin_id = _text(payload, "DELEGATED_USER_ID_DERIVED") or _text(payload, "DELEGATED_USER_ID")
    admin_name = _text(payload, "DELEGATED_USER_NAME") or _text(payload, "DelegatedUsername")
    if not (admin_id or admin_name):
        return
    target = {k: v for k, v in (user or {}).items() if k in ("id", "name")}
    actor: dict[str, Any] = {}
    if admin_id:
        actor["id"] = id18(admin_id)
    if admin_name:
        actor["name"] = admin_name
    if target:
        actor["target"] = target
    doc["user"] = actor


def audit_trail(payload: Mapping[str, Any], doc: EventDoc) -> None:
    """SetupAuditTrail: category/type from Section and Action, acting user from ``CreatedBy``, target
    user from the Display text (facts C; issue 5)."""
    action = _text(payload, "Action") or ""
    section = _text(payload, "Section") or ""
    display = _text(payload, "Display") or ""
    change = codes.audit_change_type(action)
    event = doc["event"]
    if codes.audit_is_iam(section, action):
        event["category"], event["type"] = ["iam"], ["admin", change]
    else:
        event["category"], event["type"] = ["configuration"], [change]
    event["outcome"] = "success"  # the trail records changes that were applied
    if display:
        doc["message"] = display
        target = codes.audit_target(display)
        if "id" in target:
            target["id"] = id18(target["id"])
        if target:
            put(doc, ("user", "target"), target)
    created_by = payload.get("CreatedBy")
    if isinstance(created_by, Mapping):
        for key, path in (("Username", ("user", "name")), ("Name", ("user", "full_name"))):
            value = created_by.get(key)
            if isinstance(value, str) and value:
                put(doc, path, value)
