"""Salesforce code tables (documented values) and the text rules applied to them.

Sources: EventLogFile "Login Event Type" and "Logout Event Type" pages (docs v67) as quoted in
shared/reference/salesforce-facts.md A6; unknown codes pass through unchanged so nothing is hidden.
"""

from __future__ import annotations

import re

#: ELF Login ``LOGIN_TYPE`` codes -> the names LoginEvent/LoginHistory ``LoginType`` use
#: (Login Event Type, docs v67: "7-AppExchange, A-Application, s-Certificate-based login, ...").
LOGIN_TYPES: dict[str, str] = {
    "7": "AppExchange",
    "A": "Application",
    "s": "Certificate-based login",
    "k": "Chatter Communities External User",
    "n": "Chatter Communities External User Third Party SSO",
    "x": "Cross Tenant Login",
    "r": "Employee Login to Community",
    "z": "Lightning Login",
    "l": "Networks Portal API Only",
    "6": "Remote Access Client",
    "i": "Remote Access 2.0",
    "I": "Other Apex API",
    "R": "Partner Product",
    "w": "Passwordless Login",
    "3": "Customer Service Portal",
    "q": "Partner Portal Third-Party SSO",
    "9": "Partner Portal",
    "5": "SAML Idp Initiated SSO",
    "m": "SAML Chatter Communities External User SSO",
    "b": "SAML Customer Service Portal SSO",
    "c": "SAML Partner Portal SSO",
    "h": "SAML Site SSO",
    "8": "SAML Sfdc Initiated SSO",
    "E": "SelfService",
    "j": "Third Party SSO",
}

#: ELF Logout ``APP_TYPE`` (Logout Event Type, docs v67; the values the facts file quotes).
APP_TYPES: dict[str, str] = {
    "1000": "Application",
    "1007": "SFDC Application",
    "1014": "Chat",
    "2501": "CTI",
    "2514": "OAuth",
    "3475": "Partner Portal",
}

#: ELF Logout ``PLATFORM_TYPE`` (Logout Event Type, docs v67; the values the facts file quotes).
PLATFORM_TYPES: dict[str, str] = {
    "1015": "Windows 10",
    "2003": "Mac OS X",
    "4000": "Linux",
    "5005": "Android",
    "5006": "iPhone",
}

#: ELF ``REQUEST_STATUS`` (Login/API/URI event types): S Success, F Failure, U Undefined,
#: A Authorization Error, R Redirect, N Not Found.
REQUEST_STATUS_OUTCOME: dict[str, str] = {
    "S": "success",
    "R": "success",
    "F": "failure",
    "A": "failure",
    "N": "failure",
    "U": "unknown",
    "Success": "success",
    "Failure": "failure",
}

#: ELF Logout ``SESSION_LEVEL`` numeric form (real rows: "STANDARD(db=1,...)", "HIGH_ASSURANCE(db=10,...)").
SESSION_LEVELS: dict[str, str] = {"1": "STANDARD", "10": "HIGH_ASSURANCE"}

_VERBOSE = re.compile(r"^([^()]+)\(db=[^)]*\)$")


def plain_value(text: str) -> str:
    """``Standard(db=S,api=Standard)`` -> ``Standard``: real Logout rows are verbose (Beats, AppOmni rows)."""
    match = _VERBOSE.match(text)
    return match.group(1) if match else text


def login_type_name(code: str) -> str:
    return LOGIN_TYPES.get(code, code)


def session_level(text: str) -> str:
    text = plain_value(text)
    return SESSION_LEVELS.get(text, text)


def app_type_name(code: str) -> str:
    return APP_TYPES.get(code, code)


def platform_type_name(code: str) -> str:
    return PLATFORM_TYPES.get(code, code)


def tls_version(text: str) -> tuple[str, str] | None:
    """``TLSv1.2`` (ELF) or ``TLS 1.2`` (streams) -> ("tls", "1.2") for ECS ``tls.*``."""
    match = re.match(r"^(TLS|SSL)\s?v?(\d(?:\.\d)?)$", text.strip(), re.IGNORECASE)
    if not match:
        return None
    return match.group(1).lower(), match.group(2)


_TARGET_BY_ID = re.compile(r"\buser (?P<full>[^()]+?) \(UserID: \[(?P<id>\w+)\]\)")
_TARGET_BY_NAME = re.compile(r"\bfor (?:user )?(?P<name>[^\s,@]+@[^\s,;]+)")
_TARGET_CREATED = re.compile(r"^Created new user (?P<full>.+?)\s*$")


def audit_target(display: str) -> dict[str, str]:
    """The user a SetupAuditTrail ``Display`` text names, as ECS ``user.target`` fields.

    Formats seen in real/vendor records (facts file C; AppOmni and Elastic fixtures): "Changed email for
    user Sally Example (UserID: [005...]) from ...", "For user a@b.com, the User Verified Email ...",
    "Time-Based Token removed for a@b.com", "Created new user Bob Example".
    """
    match = _TARGET_BY_ID.search(display)
    if match:
        return {"id": match.group("id"), "full_name": match.group("full").strip()}
    match = _TARGET_BY_NAME.search(display) or _TARGET_BY_NAME.search(display.replace("For ", "for ", 1))
    if match:
        return {"name": match.group("name").rstrip(".:")}
    match = _TARGET_CREATED.match(display)
    if match:
        return {"full_name": match.group("full")}
    return {}


#: SetupAuditTrail Sections and Action prefixes that change identities or access (ECS category ``iam``).
IAM_SECTIONS = frozenset({"Manage Users", "Groups", "Roles", "Profiles", "Permission Sets", "Connected Apps"})
_IAM_ACTION = re.compile(
    r"user|group|role|permset|profile|password|login|authenticator|twofactor|delegat|suorgadmin|membership",
    re.IGNORECASE,
)


def audit_is_iam(section: str, action: str) -> bool:
    return section in IAM_SECTIONS or bool(_IAM_ACTION.search(action))


def audit_change_type(action: str) -> str:
    """ECS ``event.type`` for an audit Action: creation, deletion or change."""
    lowered = action.lower()
    if lowered.startswith(("created", "create", "insert", "installed", "add")) or "created" in lowered:
        return "creation"
    if lowered.startswith(("deleted", "delete", "remove", "uninstalled")) or "deleted" in lowered:
        return "deletion"
    return "change"
