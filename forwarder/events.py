"""The normalised, ECS-aligned security event, and the JSON document form that the journal and sinks use.

Sources produce ``Record``s; ``forwarder.normalize`` turns each into a ``SecurityEvent``; the journal stores
``SecurityEvent.to_doc()`` (a plain JSON-ready dict with ECS dotted names nested); delivery hands those
documents (``EventDoc``) to sinks, so sinks never re-validate pydantic models on the hot path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: An event as stored and delivered: nested ECS dict, e.g. ``{"@timestamp": ..., "event": {"id": ...}}``.
EventDoc = dict[str, Any]


def get_path(doc: EventDoc, dotted: str, default: Any = None) -> Any:
    """``get_path(doc, "event.dataset")``: the value at an ECS dotted path, or ``default``."""
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


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
    dataset: str  # "salesforce.login", ...
    provider: str | None = None  # where it came from: "LoginEventStream", "EventLogFile", ...
    module: str = "salesforce"
    severity: int = 0  # 0..100 (ECS numeric severity)
    risk_score: float | None = None
    created: datetime | None = None
    ingested: datetime | None = None


class SecurityEvent(BaseModel):
    """One normalised event. Extra ECS sections are added by ``forwarder.normalize``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    timestamp: datetime = Field(alias="@timestamp")
    message: str | None = None
    event: EventFields
    salesforce: dict[str, Any] = Field(default_factory=dict)

    def to_doc(self) -> EventDoc:
        """The JSON-ready nested dict stored in the journal (None fields omitted)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
