"""Pure syslog header encoders: RFC 5424 (HEADER, STRUCTURED-DATA) and the legacy RFC 3164 form, plus the
PRI and severity rules. No I/O: the sink and the tests feed events in and compare bytes out.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import UTC, datetime

#: RFC 5424 §6.2.1 facility codes by name (also the names rsyslog and logger use).
FACILITIES: dict[str, int] = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
    "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "audit": 13, "alert": 14, "clock": 15,
    **{f"local{n}": 16 + n for n in range(8)},
}  # fmt: skip

NILVALUE = "-"
#: RFC 5424 §6: field length limits in octets (PRINTUSASCII only).
HOSTNAME_MAX, APP_NAME_MAX, PROCID_MAX, MSGID_MAX, SD_NAME_MAX = 255, 48, 128, 32, 32
#: RFC 3164 §4.1.3: the TAG is at most 32 alphanumeric characters.
TAG_MAX = 32

_NOT_PRINTUSASCII = re.compile(r"[^\x21-\x7e]")
# SD-NAME = 1*32PRINTUSASCII except '=', SP, ']' and '"' (RFC 5424 §6.3.2); '@' only once, in SD-IDs.
_SD_NAME = re.compile(r"^[\x21-\x7e]{1,32}$")
_SD_NAME_FORBIDDEN = set('= ]"')
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def syslog_severity(ecs_severity: object) -> int:
    """ECS ``event.severity`` (0..100) to a syslog severity (RFC 5424 §6.2.1). Thresholds follow the
    detection rules (≥80 critical, ≥60 high, ≥40 medium) and reference §3.1's mapping: critical → 2 (crit),
    high → 3 (err), medium → 4 (warning), low and informational → 6 (info)."""
    try:
        value: int = int(ecs_severity)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        value = 0
    if value >= 80:
        return 2
    if value >= 60:
        return 3
    if value >= 40:
        return 4
    return 6


def pri(facility: int, severity: int) -> str:
    """``<PRIVAL>`` with PRIVAL = facility * 8 + severity (RFC 5424 §6.2.1), 0..191."""
    return f"<{facility * 8 + severity}>"


def header_field(value: object, limit: int) -> str:
    """A HEADER token: PRINTUSASCII only (others become ``_``), cut to ``limit``; empty becomes NILVALUE."""
    text = _NOT_PRINTUSASCII.sub("_", str(value) if value is not None else "")[:limit]
    return text or NILVALUE


def is_sd_name(name: str) -> bool:
    """True when ``name`` is a valid SD-NAME (PARAM-NAME, or an SD-ID part) under RFC 5424 §6.3.2/§6.3.3."""
    return bool(_SD_NAME.match(name)) and not (_SD_NAME_FORBIDDEN & set(name))


def is_sd_id(sd_id: str) -> bool:
    """A private SD-ID is ``name@<private enterprise number>`` (RFC 5424 §6.3.2); IANA-registered
    ones have no ``@`` and are not ours to use, so we require the enterprise form."""
    name, at, number = sd_id.partition("@")
    return is_sd_name(sd_id) and bool(name) and at == "@" and number.isdigit() and "@" not in number


def escape_param_value(value: str) -> str:
    """PARAM-VALUE escaping: ``"``, ``\\`` and ``]`` MUST be escaped with a backslash (RFC 5424 §6.3.3);
    nothing else is (a backslash before any other character stays literal)."""
    if "\\" in value or '"' in value or "]" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")
    return value


def structured_data(sd_id: str, params: Iterable[tuple[str, str]]) -> str:
    """One SD-ELEMENT ``[sd_id name="value" ...]``. Names must already be valid SD-NAMEs."""
    body = "".join(f' {name}="{escape_param_value(value)}"' for name, value in params)
    return f"[{sd_id}{body}]"


def rfc3339(moment: datetime) -> str:
    """TIMESTAMP in UTC with microseconds and an uppercase ``T`` and ``Z`` (RFC 5424 §6.2.3: at most 6
    fractional digits)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def timestamp(value: object, fallback: datetime) -> str:
    """The event's ``@timestamp`` as an RFC 5424 TIMESTAMP. The journal's canonical form (UTC, 6 digits,
    ``Z``, as pydantic writes it) is already one and is used as is."""
    if (
        isinstance(value, str)
        and len(value) == 27
        and value[-1] == "Z"
        and value[10] == "T"
        and value[19] == "."
    ):
        return value
    return rfc3339(parse_timestamp(value, fallback))


def parse_timestamp(value: object, fallback: datetime) -> datetime:
    """The event's ``@timestamp`` (ISO 8601 text or datetime), or ``fallback`` when absent or unparsable."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return fallback
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return fallback


def fixed_fields(hostname: str, app_name: str, procid: str) -> str:
    """``HOSTNAME SP APP-NAME SP PROCID``: the part of the header that is the same for every message."""
    return (
        f"{header_field(hostname, HOSTNAME_MAX)} {header_field(app_name, APP_NAME_MAX)} "
        f"{header_field(procid, PROCID_MAX)}"
    )


def msgid(dataset: object) -> str:
    """MSGID from ``event.dataset``: printable ASCII, at most 32 (RFC 5424 §6.2.7)."""
    return _msgid(dataset) if isinstance(dataset, str) else header_field(dataset, MSGID_MAX)


@functools.lru_cache(maxsize=1024)  # few distinct datasets: sanitise each once
def _msgid(dataset: str) -> str:
    return header_field(dataset, MSGID_MAX)


def rfc5424_header(prival: str, stamp: str, fixed: str, dataset: object) -> str:
    """``PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID`` (RFC 5424 §6.2)."""
    return f"{prival}1 {stamp} {fixed} {msgid(dataset)}"


def rfc3164_header(prival: str, moment: datetime, hostname: str, tag: str, procid: str) -> str:
    """``<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]:`` (RFC 3164 §4.1.2, §4.1.3). The day is space-padded.
    The timestamp is rendered in UTC: 3164 has no zone field and a forwarder's local zone means nothing
    to the SIEM; the exact event time stays in the message."""
    utc = moment.astimezone(UTC)
    stamp = f"{_MONTHS[utc.month - 1]} {utc.day:2d} {utc:%H:%M:%S}"
    clean_tag = re.sub(r"[^A-Za-z0-9_.-]", "_", tag)[:TAG_MAX] or "sf-forwarder"
    return f"{prival}{stamp} {header_field(hostname, HOSTNAME_MAX)} {clean_tag}[{procid}]:"


def cut_utf8(data: bytes, limit: int) -> bytes:
    """``data`` cut to at most ``limit`` bytes without splitting a UTF-8 sequence."""
    if len(data) <= limit:
        return data
    end = max(limit, 0)
    # Step back over continuation bytes (0b10xxxxxx) so the cut lands on a character boundary.
    while end > 0 and (data[end] & 0xC0) == 0x80:
        end -= 1
    return data[:end]
