"""SetupAuditTrail polling: a CreatedDate watermark re-queried with an overlap window, de-duplicated by Id.

Records: ``Record(source="setupaudittrail", kind="SetupAuditTrail", payload=<the SOQL record as sent,
incl. "CreatedBy": {"Username", "Name"}>)``, on the realtime lane. Position: see ``_watermark``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import Field

from forwarder.sources._watermark import PollConfig, WatermarkPoller, window_soql

# Fields of the object reference v67 (facts C); CreatedBy.Username is the actor's login name.
FIELDS = (
    "Id, Action, Section, Display, CreatedDate, CreatedById, CreatedBy.Username, CreatedBy.Name, "
    "DelegateUser, ResponsibleNamespacePrefix, CreatedByContext"
)
# SetupAuditTrail keeps "at least the last 180 days" (object reference, facts C).
RETENTION = timedelta(days=180)


class SetupAuditTrailConfig(PollConfig):
    enabled: bool = Field(True, description="Poll SetupAuditTrail.")


def audit_soql(since: datetime, until: datetime | None = None) -> str:
    """Records from ``since`` (inclusive) in (CreatedDate, Id) order; Id breaks same-second ties."""
    return window_soql("SetupAuditTrail", FIELDS, "CreatedDate", since, until)


class SetupAuditTrailSource(WatermarkPoller):
    """Polls SetupAuditTrail; every record reaches the journal once, late ones inside the overlap too."""

    name = "setupaudittrail"
    kind = "SetupAuditTrail"
    sobject = "SetupAuditTrail"
    fields = FIELDS
    time_field = "CreatedDate"
    retention = RETENTION
