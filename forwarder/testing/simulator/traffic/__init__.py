"""Seeded, deterministic Salesforce traffic: each activity in every form a client can see it.

One ``Activity`` (a login, a report export...) carries its CometD payload, its RTEM storage-object and
LoginHistory/SetupAuditTrail records for SOQL, and its EventLogFile rows, so cross-source tests can check
that the same login normalises alike. Usable without HTTP: ``Traffic(seed).login()``.
"""

from forwarder.testing.simulator.traffic.model import (
    ALERTS,
    BIG_OBJECT_ID,
    CHANNELS,
    DEFAULT_START,
    LOGIN_STATUS_CODES,
    LOGIN_TYPE_CODES,
    STORAGE_ONLY,
    Activity,
    storage_record,
)
from forwarder.testing.simulator.traffic.scenarios import Traffic, iter_all

__all__ = [
    "ALERTS",
    "BIG_OBJECT_ID",
    "CHANNELS",
    "DEFAULT_START",
    "LOGIN_STATUS_CODES",
    "LOGIN_TYPE_CODES",
    "STORAGE_ONLY",
    "Activity",
    "Traffic",
    "iter_all",
    "storage_record",
]
