"""Administration and Threat Detection: SetupAuditTrail actions, permission grants, anomaly events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from forwarder.testing.simulator import formats as fmt
from forwarder.testing.simulator.people import BROWSERS, User
from forwarder.testing.simulator.traffic.base import TrafficBase
from forwarder.testing.simulator.traffic.model import Activity

#: (Action, Section, Display) of ordinary Setup changes; Display texts follow the real records' wording.
_ROUTINE = (
    ("createduser", "Manage Users", "Created new user {user}"),
    ("changedemail", "Manage Users", "Changed email for user {name} ({user})"),
    ("resetpassword", "Manage Users", "Reset password for user {user}"),
    ("PermSetEnableUserPerm", "Manage Users",
     "Changed permission set Sales_Ops: Run Reports permission was changed from disabled to enabled"),
    ("groupMembership", "Groups", "Added {name} to group All Sales"),
    ("profileClonedStandard", "Manage Users", "Cloned profile Standard User as Sales Standard"),
    ("insertConnectedApplication", "Connected Apps", "Created connected app Reporting Integration"),
    ("changedUserEmailVerifiedStatusVerified", "Manage Users",
     "For user {user}, the User Verified Email status changed to verified"),
)  # fmt: skip


class AdminTraffic(TrafficBase):
    """Setup changes and security detections."""

    def admin_action(
        self,
        action: str,
        section: str,
        display: str,
        *,
        actor: User | str | None = None,
        at: datetime | None = None,
        delegate: str | None = None,
    ) -> Activity:
        actor_user = self.user(actor or self.users[0])
        ctx = self._ctx(actor_user, at)
        record = self._audit_record(ctx, actor_user, action, section, display, delegate)
        return self._activity("admin_action", ctx, None, None, SetupAuditTrail=record)

    def routine_admin(self, *, at: datetime | None = None) -> Activity:
        """Everyday Setup work, as SetupAuditTrail records it (Action values seen in real data, facts C)."""
        target = self.user(None)
        action, section, display = self.rng.choice(_ROUTINE)
        text = display.format(user=target.username, name=target.name)
        return self.admin_action(action, section, text, at=at)

    def permission_set_assign(
        self,
        target: User | str | None = None,
        *,
        permset: str = "Modify_All_Data_Admin",
        actor: User | str | None = None,
        at: datetime | None = None,
    ) -> Activity:
        """Privilege grant: PermissionSetEvent (RTEM) plus its SetupAuditTrail entry."""
        actor_user, target_user = self.user(actor or self.users[0]), self.user(target)
        ctx = self._ctx(actor_user, at)
        payload = self._stream(
            ctx,
            EventSource="API",
            Operation="AssignedToUsers",
            ParentIdList=target_user.id,
            ParentValueList=target_user.username,
            PermissionExpirationList=None,
            PermissionList="ModifyAllData,ViewAllData",
            PermissionType="SystemPermission",
            PermissionSetId=fmt.new_id18(self.rng, "0PS"),
            PermissionSetName=permset,
        )
        audit = self._audit_record(
            ctx,
            actor_user,
            "PermSetAssign",
            "Manage Users",
            f"Permission set {permset}: assigned to user {target_user.username}",
        )
        return self._activity(
            "permission_set_assign", ctx, "PermissionSetEvent", payload, SetupAuditTrail=audit
        )

    # --- Threat Detection / other streams ------------------------------------------------------------------
    def threat(
        self, channel: str, who: User | str | None = None, *, at: datetime | None = None, **fields: Any
    ) -> Activity:
        """A Threat Detection or stream-only event (SessionHijacking, CredentialStuffing, Mobile*...)."""
        ctx = self._ctx(who, at)
        extra: dict[str, Any] = {
            "Score": round(self.rng.uniform(0.7, 0.99), 6),
            "Summary": f"{channel} detected",
            "SecurityEventData": "{}",
        }
        if channel == "SessionHijackingEvent":
            extra |= {
                "CurrentIp": ctx.session.ip,
                "PreviousIp": ctx.user.home.ip(self.rng),
                "CurrentUserAgent": ctx.session.browser[0],
                "PreviousUserAgent": BROWSERS[0][0],
                "CurrentPlatform": ctx.session.browser[2],
                "PreviousPlatform": "Win10",
            }
        elif channel == "CredentialStuffingEvent":
            extra |= {
                "AcceptLanguage": "en-US",
                "LoginType": "Application",
                "LoginUrl": "acme.my.salesforce.com",
                "UserAgent": ctx.session.browser[0],
            }
        payload = self._stream(ctx, **(extra | fields))
        return self._activity(channel, ctx, channel, payload)
