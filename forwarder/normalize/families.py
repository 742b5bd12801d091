"""Mapping tables: Salesforce field -> ECS path, per family (RTEM streams/objects, ELF, audit trail).

docs/normalisation.md is the human-readable form of these tables. Families share a dataset across
sources (LoginEventStream, LoginEvent, LoginHistory and the ELF Login row are all ``salesforce.login``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from forwarder.normalize import hooks
from forwarder.normalize.compiler import Apply, compile_fields
from forwarder.normalize.engine import Family, Finish, Table, pick, target
from forwarder.normalize.values import (
    _INT64,
    BadValue,
    _cached,
    as_bool,
    as_int,
    as_str,
    elf_text,
    id18,
    ip_or_none,
    iso_text,
)


def _nonneg(value: Any) -> int | None:
    """ELF sizes/times use -1 for "not measured" (Beats ApexCallout row, facts A4)."""
    number = value if value.__class__ is int and 0 <= value < _INT64 else as_int(value)  # typed rows: no call
    return number if number >= 0 else None


def _ms_to_ns(value: Any) -> int | None:
    number = _nonneg(value)
    return None if number is None else number * 1_000_000


@_cached  # URIs repeat across rows (a few hundred pages per org)
def _url_text(value: Any) -> str | None:
    text = as_str(value).strip('"')  # ELF triple-quotes some values: """https://...""" (facts A4)
    return text if text.startswith(("/", "http://", "https://")) else None


@_cached
def _url_path(value: Any) -> str | None:
    text = _url_text(value)
    return text.split("?", 1)[0] if text and text.startswith("/") else None


def _flag(value: Any) -> bool | str:
    """ELF Boolean columns ("1"/"0"); a value outside that vocabulary is kept as text, not rejected."""
    try:
        return as_bool(value)
    except BadValue:
        return as_str(value)


def _upper(value: Any) -> str:
    return as_str(value).upper()


def _str_or_none(value: Any) -> str | None:
    if isinstance(value, dict | list):
        raise BadValue(f"expected text, got {type(value).__name__}")
    return as_str(value)


# --- Real-Time Event Monitoring: streams (CometD payloads) and storage objects (SOQL) ---------------
# Field names: Platform Events Dev Guide v67 "Real-Time Event Monitoring Objects" (facts B2).
RTEM_TABLE: Table = {
    "EventDate": (),
    "EventIdentifier": (),
    "CreatedDate": (target("event.created", iso_text),),
    "UserId": (target("user.id", id18),),
    "Username": (target("user.name", as_str),),
    "SourceIp": (target("source.ip", ip_or_none), target("salesforce.source_ip", as_str)),
    "City": (target("source.geo.city_name", as_str),),
    "Country": (target("source.geo.country_name", as_str),),
    "CountryIso": (target("source.geo.country_iso_code", as_str),),
    "Subdivision": (target("source.geo.region_name", as_str),),
    "PostalCode": (target("source.geo.postal_code", as_str),),
    "LoginLatitude": (),
    "LoginLongitude": (),
    "Latitude": (),
    "Longitude": (),
    "Browser": (target("user_agent.name", as_str),),
    "Platform": (target("user_agent.os.name", as_str),),
    "UserAgent": (target("user_agent.original", as_str),),
    "HttpMethod": (target("http.request.method", as_str),),  # ECS: keep the original casing
    "LoginUrl": (target("url.domain", as_str),),
    "PageUrl": (target("url.original", as_str),),
    "TlsProtocol": (),
    "CipherSuite": (target("tls.cipher", as_str),),
    "OrganizationId": (target("organization.id", id18),),
    "Score": (),
    "Summary": (),
    "LoginType": (target("salesforce.login_type", _str_or_none),),
}
RTEM_PICKS = (pick("@timestamp", ("EventDate", "CreatedDate"), iso_text),)
_RTEM_ID = ("EventIdentifier", "Id")
_RTEM_HOOKS: tuple[Finish, ...] = (hooks.geo, hooks.tls)

# --- EventLogFile CSV rows (typed by LogFileFieldTypes) ----------------------------------------------
# Columns: EventLogFile Supported Event Types, docs v67, and real rows (facts A4-A6).
_ELF_NUMBERS = (
    "CPU_TIME", "DB_TOTAL_TIME", "DB_BLOCKS", "DB_CPU_TIME", "ROWS_PROCESSED", "NUMBER_FIELDS", "EXEC_TIME",
    "CALLOUT_TIME", "NUMBER_SOQL_QUERIES", "TIME", "NUM_RESULTS", "SIZE_BYTES", "ROW_COUNT", "NUMBER_COLUMNS",
    "NUMBER_BUCKETS", "NUMBER_EXCEPTION_FILTERS", "AVERAGE_ROW_SIZE", "NUMBER_FAILURES", "DURATION",
    "EFFECTIVE_PAGE_TIME", "PAGE_START_TIME", "RESOLUTION_TYPE", "CLIENT_VERSION",
)  # fmt: skip
ELF_TABLE: Table = {
    "TIMESTAMP": (target("salesforce.timestamp", as_str),),
    "TIMESTAMP_DERIVED": (),
    "USER_ID": (target("salesforce.user_id", as_str),),
    "USER_ID_DERIVED": (),
    "USER_NAME": (target("user.name", as_str),),
    "ORGANIZATION_ID": (target("organization.id", id18),),
    "SOURCE_IP": (target("salesforce.source_ip", as_str),),
    "CLIENT_IP": (target("salesforce.client_ip", as_str),),
    "BROWSER_TYPE": (target("user_agent.original", as_str),),
    "URI": (
        target("url.original", _url_text),
        target("url.path", _url_path),
        target("salesforce.uri", as_str),
    ),
    "URL": (target("url.original", _url_text), target("salesforce.url", as_str)),
    "METHOD": (target("http.request.method", _upper),),
    "HTTP_METHOD": (target("http.request.method", _upper),),
    "STATUS_CODE": (target("http.response.status_code", as_int),),
    "REQUEST_SIZE": (target("http.request.bytes", _nonneg),),
    "RESPONSE_SIZE": (target("http.response.bytes", _nonneg),),
    "MEDIA_TYPE": (target("http.response.mime_type", as_str),),
    "REFERRER_URI": (target("http.request.referrer", as_str),),
    "HTTP_REFERER": (target("http.request.referrer", as_str),),
    "RUN_TIME": (target("event.duration", _ms_to_ns), target("salesforce.run_time", as_int)),
    "CIPHER_SUITE": (target("tls.cipher", as_str),),
    "TLS_PROTOCOL": (),
    "LOGIN_TYPE": (),
    "USER_TYPE": (target("salesforce.user_type", as_str),),
    "SESSION_LEVEL": (target("salesforce.session_level", as_str),),
    "SUCCESS": (target("salesforce.success", _flag),),
    "USER_INITIATED_LOGOUT": (target("salesforce.user_initiated_logout", _flag),),
    "IS_LONG_RUNNING_REQUEST": (target("salesforce.is_long_running_request", _flag),),
    **{name: (target("salesforce." + name.lower(), as_int),) for name in _ELF_NUMBERS},
}
ELF_PICKS = (
    # TIMESTAMP_DERIVED first: ISO text, the value Elastic's pipeline uses; TIMESTAMP (GMT, ms) can differ
    # from it by 1-50 ms (facts A4) and is kept as salesforce.timestamp.
    pick("@timestamp", ("TIMESTAMP_DERIVED",), iso_text, ("TIMESTAMP", elf_text)),
    pick("user.id", ("USER_ID_DERIVED", "USER_ID"), id18),  # expose the 18-character form (facts A4)
    # SOURCE_IP is the login request's origin; CLIENT_IP may be the literal "Salesforce.com IP".
    pick("source.ip", ("SOURCE_IP", "CLIENT_IP"), ip_or_none),
)
_ELF_HOOKS: tuple[Finish, ...] = (hooks.tls, hooks.related_ips("FORWARDED_FOR_IP"))

# --- SetupAuditTrail (SOQL records; facts C) ---------------------------------------------------------
SAT_TABLE: Table = {
    "Id": (),
    "CreatedDate": (target("event.created", iso_text),),
    "CreatedById": (target("user.id", id18),),
    "CreatedBy": (),
    "Action": (target("event.action", as_str), target("salesforce.setup_audit_trail.action", as_str)),
    "Section": (target("salesforce.setup_audit_trail.section", as_str),),
    "Display": (target("salesforce.setup_audit_trail.display", as_str),),
    "DelegateUser": (target("salesforce.setup_audit_trail.delegate_user", as_str),),
}

# --- LoginHistory (queried object, orgs without Event Monitoring; Object Reference "LoginHistory") ----
LOGIN_HISTORY_TABLE: Table = {
    **RTEM_TABLE,
    "LoginTime": (),
    "Application": (target("salesforce.application", as_str),),
}


def _snake_upper(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


#: dataset -> (category, type, action); action None means kebab-case of the dataset.
_CLASSES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str | None]] = {
    "login": (("authentication",), ("info",), "login-attempt"),  # Elastic's action and type (conformance)
    "logout": (("authentication",), ("info",), "logout"),
    "login_as": (("authentication",), ("info",), "login-as"),
    "identity_verification": (("authentication",), ("info",), None),
    "permission_set": (("iam",), ("change",), None),
    "file": (("file",), ("access",), None),
    "content_transfer": (("file",), ("access",), None),
    "search": (("database",), ("access",), None),
    "unique_query": (("database",), ("access",), None),
    "apex_callout": (("network",), ("connection",), None),  # Elastic's apex pipeline
    "external_custom_apex_callout": (("network",), ("connection",), None),
    "apex_execution": ((), (), None),
    "apex_trigger": ((), (), None),
    "package_install": (("package",), ("installation",), None),
    "metadata_api_operation": (("configuration",), ("change",), None),
}
_WEB = ("api", "rest_api", "bulk_api", "bulk_api2", "apex_rest_api", "apex_soap", "api_total_usage",
        "bulk_api_result", "uri", "lightning_uri", "lightning_page_view", "lightning_interaction",
        "visualforce_request", "sites", "aura_request", "list_view", "report", "report_export")  # fmt: skip
THREATS = {
    "session_hijacking": "SessionHijacking",
    "credential_stuffing": "CredentialStuffing",
    "report_anomaly": "ReportAnomaly",
    "api_anomaly": "ApiAnomaly",
    "login_anomaly": "LoginAnomaly",
    "guest_user_anomaly": "GuestUserAnomaly",
}
MOBILE = ("mobile_email", "mobile_enforced_policy", "mobile_screenshot", "mobile_telephony")

_OUTCOME_HOOKS: dict[str, Finish] = {
    "login": hooks.login_status,
    "identity_verification": hooks.verification_status,
    "apex_callout": hooks.success_flag,
    "external_custom_apex_callout": hooks.success_flag,
    "bulk_api": hooks.success_flag,
    "rest_api": hooks.success_flag,
    "api_total_usage": hooks.success_flag,
}


def _known(dataset: str) -> bool:
    return dataset in _CLASSES or dataset in _WEB or dataset in THREATS or dataset in MOBILE


def _classify(dataset: str) -> tuple[tuple[str, ...], tuple[str, ...], str | None, str]:
    if dataset in THREATS:
        return ("intrusion_detection",), ("info",), dataset.replace("_", "-"), "alert"
    if dataset in MOBILE:
        return ("host",), ("info",), dataset.replace("_", "-"), "event"
    if dataset in _WEB:
        return ("web",), ("access",), dataset.replace("_", "-"), "event"
    category, types, action = _CLASSES.get(dataset, ((), (), None))
    return category, types, action or dataset.replace("_", "-"), "event"


def _outcome_hooks(dataset: str, *, elf: bool) -> tuple[Finish, ...]:
    found = _OUTCOME_HOOKS.get(dataset)
    if found is not None:
        return (found,)
    return (hooks.request_status,) if elf else (hooks.operation_status,)


def _extra_hooks(dataset: str) -> tuple[Finish, ...]:
    extra: list[Finish] = []
    if dataset == "logout":
        extra.append(hooks.logout_codes)
    if dataset == "login":
        extra.append(hooks.elf_login_type)
    if dataset == "login_as":
        extra.append(hooks.login_as_users)
    if dataset in THREATS:
        extra += [
            hooks.threat_score,
            hooks.threat_rule(THREATS[dataset]),
            hooks.related_ips("CurrentIp", "PreviousIp"),
        ]
    return tuple(extra)


_resolved: dict[tuple[str, str], tuple[Family, str]] = {}


def family_for(source: str, kind: str) -> tuple[Family, str]:
    """The family and ``event.provider`` for a record; unknown kinds get the generic mapping."""
    key = (source, kind)
    found = _resolved.get(key)
    if found is None:
        found = _resolve(source, kind)
        if len(_resolved) < 1_000:  # bounded: kinds come from outside
            _resolved[key] = found
    return found


def _resolve(source: str, kind: str) -> tuple[Family, str]:
    if source == "setupaudittrail" or kind == "SetupAuditTrail":
        return _family("setup_audit_trail", "sat"), "SetupAuditTrail"
    if source == "eventlogfile":
        return _family(_snake_upper(kind) if not kind.isupper() else kind.lower(), "elf"), "EventLogFile"
    if kind == "LoginHistory":
        return _family("login", "login_history"), "LoginHistory"
    return _family(dataset_of(kind), "rtem"), kind


def dataset_of(kind: str) -> str:
    """``LoginEventStream`` -> ``login``; ``SessionHijackingEventStore`` -> ``session_hijacking``."""
    base = kind.split("/")[-1]
    for suffix in ("EventStream", "EventStore", "Event", "__e"):
        if base.endswith(suffix) and len(base) > len(suffix):
            base = base[: -len(suffix)]
            break
    return _snake_upper(base) if not base.isupper() else base.lower()


_families: dict[tuple[str, str], Family] = {}


def _family(dataset: str, shape: str) -> Family:
    """Built once per (dataset, shape); bounded by the number of event types Salesforce ships."""
    key = (dataset, shape)
    found = _families.get(key)
    if found is None:
        found = _make(dataset, shape)
        if len(_families) < 1_000:
            _families[key] = found
    return found


def _make(dataset: str, shape: str) -> Family:
    family = _describe(dataset, shape)

    def specialise(keys: tuple[str, ...]) -> Apply:
        return compile_fields(family.table, family.picks, keys)

    return replace(family, apply=compile_fields(family.table, family.picks), specialise=specialise)


def _describe(dataset: str, shape: str) -> Family:
    category, types, action, kind = _classify(dataset)
    common: dict[str, Any] = {
        "dataset": "salesforce." + dataset, "category": category, "type": types, "action": action,
        "known": shape == "sat" or _known(dataset),
    }  # fmt: skip
    if shape == "sat":
        return Family(
            **common, table=SAT_TABLE, picks=(pick("@timestamp", ("CreatedDate",), iso_text),),
            finish=(hooks.audit_trail,), id_keys=("Id",),
        )  # fmt: skip
    if shape == "elf":
        finish = _ELF_HOOKS + _outcome_hooks(dataset, elf=True) + _extra_hooks(dataset)
        return Family(**common, kind=kind, table=ELF_TABLE, picks=ELF_PICKS, finish=finish)
    if shape == "login_history":
        picks = (pick("@timestamp", ("LoginTime", "CreatedDate"), iso_text),)
        return Family(
            **common, table=LOGIN_HISTORY_TABLE, picks=picks, finish=(hooks.tls, hooks.login_status),
            id_keys=("Id",),
        )  # fmt: skip
    finish = _RTEM_HOOKS + _outcome_hooks(dataset, elf=False) + _extra_hooks(dataset)
    return Family(**common, kind=kind, table=RTEM_TABLE, picks=RTEM_PICKS, finish=finish, id_keys=_RTEM_ID)
