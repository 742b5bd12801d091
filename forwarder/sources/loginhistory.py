"""LoginHistory polling, for orgs without Event Monitoring: a LoginTime watermark with an overlap window.

Records: ``Record(source="loginhistory", kind="LoginHistory", payload=<the SOQL record as sent>)``, on the
realtime lane; they normalise to ``salesforce.login`` like LoginEventStream and ELF Login rows.
Position: see ``_watermark``.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from forwarder.settings import Settings
from forwarder.sources._watermark import WatermarkPoller

# Object Reference "LoginHistory" (API 67.0): the fields every edition exposes.
FIELDS = (
    "Id, UserId, LoginTime, LoginType, SourceIp, LoginUrl, Browser, Platform, Status, Application, "
    "ClientVersion, ApiType, ApiVersion, CountryIso, LoginGeoId, TlsProtocol, CipherSuite, "
    "AuthMethodReference, LoginSubType, ForwardedForIp, AuthenticationServiceId"
)
# LoginHistory keeps six months of logins (Object Reference "LoginHistory").
RETENTION = timedelta(days=180)


class LoginHistoryConfig(Settings):
    enabled: bool = Field(False, description="Poll LoginHistory (for orgs without Event Monitoring).")
    poll_interval: timedelta = Field(timedelta(minutes=1), description="Time between polls.")
    overlap: timedelta = Field(timedelta(minutes=5), description="Re-query this far behind the watermark.")
    initial_span: timedelta = Field(timedelta(days=1), description="How far back the first run reads.")
    batch_size: int = Field(1000, ge=1, le=10_000, description="Records per journal batch.")


class LoginHistorySource(WatermarkPoller):
    """Polls LoginHistory by LoginTime; every login reaches the journal once."""

    name = "loginhistory"
    kind = "LoginHistory"
    sobject = "LoginHistory"
    fields = FIELDS
    time_field = "LoginTime"
    retention = RETENTION
