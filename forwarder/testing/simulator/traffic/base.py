"""Shared machinery of the generator: clock, users, sessions, and the common fields of each form."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from forwarder.testing.simulator import formats as fmt
from forwarder.testing.simulator.people import (
    BROWSERS,
    Place,
    User,
    make_users,
)
from forwarder.testing.simulator.schemas import COLUMNS
from forwarder.testing.simulator.traffic.model import (
    CHANNELS,
    DEFAULT_START,
    Activity,
    Ctx,
    Session,
    csv_value,
    storage_record,
)


class TrafficBase:
    """Seeded generator: the same seed and start give the same activities, ids and values."""

    def __init__(
        self,
        seed: int = 1,
        *,
        start: datetime = DEFAULT_START,
        users: int = 20,
        org_id: str | None = None,
        domain: str = "acme.example",
    ) -> None:
        self.rng = random.Random(seed)
        self.org_id = org_id or fmt.new_id15(self.rng, "00D")
        self.users = make_users(self.rng, users, domain)
        self.clock = start
        self.schema_ids = {name: fmt.token(self.rng, 22) for name in CHANNELS}
        self._sessions: dict[str, Session] = {}
        self._integration = self.users[1]

    # --- helpers -------------------------------------------------------------------------------------------
    def _tick(self, at: datetime | None, max_gap_s: float = 90.0) -> datetime:
        if at is None:
            at = self.clock + timedelta(milliseconds=self.rng.randrange(200, int(max_gap_s * 1000)))
        self.clock = max(self.clock, at)
        return at

    def user(self, who: User | str | None = None) -> User:
        if isinstance(who, User):
            return who
        if who is None:
            return self.rng.choice(self.users[2:] or self.users)
        return next(u for u in self.users if who in (u.username, u.id, u.id15))

    def _new_session(self, user: User, place: Place | None, ip: str | None) -> Session:
        place = place or user.home
        return Session(
            fmt.token(self.rng, 16, fmt.BASE64),
            fmt.token(self.rng, 16, fmt.BASE64),
            ip or place.ip(self.rng),
            place,
            self.rng.choice(BROWSERS),
        )

    def _ctx(self, who: User | str | None, at: datetime | None, session: Session | None = None) -> Ctx:
        user = self.user(who)
        if session is None:
            session = self._sessions.get(user.id) or self._new_session(user, None, None)
            self._sessions.setdefault(user.id, session)
        return Ctx(user, self._tick(at), session, fmt.token(self.rng, 22), fmt.uuid4(self.rng))

    def _stream(self, ctx: Ctx, **fields: Any) -> dict[str, Any]:
        """Fields every RTEM event shares (field reference v67); payload has no ReplayId/EventUuid (B3)."""
        created = ctx.at + timedelta(milliseconds=self.rng.randrange(500, 9000))
        base: dict[str, Any] = {
            "EventDate": fmt.stream_datetime(ctx.at),
            "CreatedDate": fmt.stream_datetime(created),
            "EventIdentifier": ctx.event_id,
            "UserId": ctx.user.id,
            "Username": ctx.user.username,
            "SourceIp": ctx.session.ip,
            "LoginKey": ctx.session.login_key,
            "SessionKey": ctx.session.session_key,
            "SessionLevel": "STANDARD",
            "PolicyId": None,
            "PolicyOutcome": None,
            "EvaluationTime": 0.0,
            "RelatedEventIdentifier": None,
            "CreatedById": self._integration.id,
        }
        base.update(fields)
        return base

    def _elf(self, ctx: Ctx, event_type: str, **values: Any) -> dict[str, str]:
        """One ELF row: every column of the type, in order, as CSV strings; unset columns are empty."""
        base: dict[str, Any] = {
            "EVENT_TYPE": event_type,
            "TIMESTAMP": fmt.elf_timestamp(ctx.at),
            "REQUEST_ID": ctx.request_id,
            "ORGANIZATION_ID": self.org_id,
            "USER_ID": ctx.user.id15,
            "USER_ID_DERIVED": ctx.user.id,
            "TIMESTAMP_DERIVED": fmt.elf_timestamp_derived(ctx.at),
            "CLIENT_IP": ctx.session.ip,
            "SESSION_KEY": ctx.session.session_key,
            "LOGIN_KEY": ctx.session.login_key,
            "USER_TYPE": "Standard",
            "RUN_TIME": self.rng.randrange(20, 900),
            "CPU_TIME": self.rng.randrange(5, 200),
        }
        base.update(values)
        return {col: csv_value(base.get(col, "")) for col, _ in COLUMNS[event_type]}

    def _activity(
        self,
        kind: str,
        ctx: Ctx,
        channel: str | None,
        payload: dict[str, Any] | None,
        elf: dict[str, dict[str, str]] | None = None,
        **objects: dict[str, Any],
    ) -> Activity:
        objs = dict(objects)
        if channel is not None and payload is not None and (store := CHANNELS[channel]):
            objs[store] = storage_record(payload)
        return Activity(
            kind,
            ctx.at,
            ctx.user.username,
            f"/event/{channel}" if channel else None,
            payload,
            objs,
            elf or {},
        )

    def _audit_record(
        self, ctx: Ctx, actor: User, action: str, section: str, display: str, delegate: str | None = None
    ) -> dict[str, Any]:
        """SetupAuditTrail as REST returns it: whole-second CreatedDate (real elastic record, facts C)."""
        return {
            "Id": fmt.new_id18(self.rng, "0Ym"),
            "Action": action,
            "Section": section,
            "Display": display,
            "CreatedDate": fmt.rest_datetime(ctx.at.replace(microsecond=0)),
            "CreatedById": actor.id,
            "CreatedBy": {"attributes": {"type": "User"}, "Username": actor.username, "Name": actor.name},
            "DelegateUser": delegate,
            "ResponsibleNamespacePrefix": None,
            "CreatedByContext": None,
            "CreatedByIssuer": None,
        }
