"""LoginHistory polling, for orgs without Event Monitoring: a LoginTime watermark with an overlap window.

Records: ``Record(source="loginhistory", kind="LoginHistory", payload=<the SOQL record as sent>)``, on the
realtime lane; they normalise to ``salesforce.login`` like LoginEventStream and ELF Login rows.
Position: see ``_watermark``.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from forwarder.sources._watermark import PollConfig, WatermarkPoller

# Object Reference "LoginHistory" (API 67.0): the fields every edition exposes.
FIELDS = (
    "Id, UserId, LoginTime, LoginType, SourceIp, LoginUrl, Browser, Platform, Status, Application, "
    "ClientVersion, ApiType, ApiVersion, CountryIso, LoginGeoId, TlsProtocol, CipherSuite, "
    "AuthMethodReference, LoginSubType, ForwardedForIp, AuthenticationServiceId"
)
# LoginHistory keeps six months of logins (Object Reference "LoginHistory").
RETENTION = timedelta(days=180)


class LoginHistoryConfig(PollConfig):
    enabled: bool = Field(False, description="Poll LoginHistory (for orgs without Event Monitoring).")


class LoginHistorySource(WatermarkPoller):
    """Polls LoginHistory by LoginTime; every login reaches the journal once."""

    name = "loginhistory"
    kind = "LoginHistory"
    sobject = "LoginHistory"
    fields = FIELDS
    time_field = "LoginTime"
    retention = RETENTION
