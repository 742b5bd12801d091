"""The generator as users see it: ordinary traffic, and attack scenarios marked with their alert."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import partial

from forwarder.testing.simulator.people import ATTACKER_PLACES, User
from forwarder.testing.simulator.traffic.access import AccessTraffic
from forwarder.testing.simulator.traffic.admin import AdminTraffic
from forwarder.testing.simulator.traffic.identity import IdentityTraffic
from forwarder.testing.simulator.traffic.model import Activity, mark

#: Stream-only and Threat Detection channels that show up now and then in live traffic.
_BACKGROUND_STREAMS = (
    "ApiAnomalyEvent", "ReportAnomalyEvent", "LoginAnomalyEvent", "GuestUserAnomalyEvent",
    "ConcurLongRunApexErrEvent", "MobileEmailEvent", "MobileEnforcedPolicyEvent", "MobileScreenshotEvent",
    "MobileTelephonyEvent",
)  # fmt: skip


class Traffic(IdentityTraffic, AccessTraffic, AdminTraffic):
    """Seeded generator: the same seed and start give the same activities, ids and values."""

    def random_activity(self, at: datetime | None = None) -> Activity:
        """One ordinary activity (a login now and then, mostly work by logged-in users) at ``at``."""
        roll = self.rng.random()
        if roll < 0.1:
            return self.login(at=at)
        if roll < 0.13:
            return self.logout(at=at)
        if roll < 0.15:
            return self.threat(self.rng.choice(_BACKGROUND_STREAMS), at=at)
        if roll < 0.16:
            return self.identity_verification(at=at)
        if roll < 0.18:
            return self.routine_admin(at=at)
        makers = (
            self.page_view,
            self.uri,
            self.api_query,
            self.rest_call,
            self.report,
            self.list_view,
            self.search,
            self.apex,
            self.file_download,
        )
        return self.rng.choice(makers)(at=at)

    def elf_activity(self, event_type: str, at: datetime | None = None) -> Activity:
        """An activity that writes a row of ``event_type`` to the EventLogFiles."""
        makers: dict[str, Callable[..., Activity]] = {
            "Login": self.login, "Logout": self.logout, "LoginAs": self.login_as, "API": self.api_query,
            "ApiTotalUsage": self.api_query, "RestApi": self.rest_call, "BulkApi": self.bulk_api,
            "Report": self.report, "ReportExport": partial(self.report, export=True), "URI": self.uri,
            "LightningPageView": self.page_view, "ApexExecution": self.apex,
            "ContentTransfer": self.file_download, "Search": self.search,
        }  # fmt: skip
        if event_type not in makers:
            raise ValueError(f"the simulator does not generate {event_type} rows")
        return makers[event_type](at=at)

    def baseline(self, count: int = 200) -> list[Activity]:
        """Ordinary working-day traffic: logins first, then a mix of activity by logged-in users."""
        out = [self.login(u) for u in self.users[2:]]
        out.append(self.login(self._integration, api=True))
        makers = (
            self.page_view,
            self.page_view,
            self.uri,
            self.api_query,
            self.rest_call,
            self.report,
            self.list_view,
            self.search,
            self.apex,
            self.file_download,
        )
        while len(out) < count:
            out.append(self.rng.choice(makers)())
            if self.rng.random() < 0.02:
                out.append(
                    self.threat(
                        self.rng.choice(
                            (
                                "MobileEmailEvent",
                                "MobileScreenshotEvent",
                                "ConcurLongRunApexErrEvent",
                                "LoginAnomalyEvent",
                            )
                        )
                    )
                )
        out.append(
            self.admin_action(
                "changedUserEmailVerifiedStatusVerified",
                "Manage Users",
                f"For user {self.users[3].username}, the User Verified Email status changed to verified",
            )
        )
        out.extend(self.logout(u) for u in self.users[2:6])
        out.extend(self.routine_admin() for _ in range(4))  # appended last: earlier output is unchanged
        return out

    def attacks(self) -> list[Activity]:
        """Every attack scenario, each activity marked with the alert it should raise."""
        out: list[Activity] = []
        for name, builder in (
            ("brute_force_then_success", self._brute_force),
            ("password_spray", self._password_spray),
            ("impossible_travel", self._impossible_travel),
            ("mass_report_export", self._mass_export),
            ("bulk_api_exfiltration", self._bulk_exfil),
            ("admin_privilege_grant", self._privilege_grant),
            ("ip_range_change", self._ip_range),
            ("password_policy_change", self._password_policy),
            ("login_as", lambda: [self.login_as()]),
            ("session_hijacking", lambda: [self.threat("SessionHijackingEvent", place_ip(self))]),
            ("credential_stuffing", lambda: [self.threat("CredentialStuffingEvent")]),
        ):
            out.extend(mark(a, name) for a in builder())
        # the brute-forced account then fails its MFA challenge (appended last: earlier output is unchanged)
        mfa = self.identity_verification(self.users[4], status="FailedInvalidCode")
        out.append(mark(mfa, "brute_force_then_success"))
        return out

    def _brute_force(self) -> list[Activity]:
        victim, bad = self.users[4], ATTACKER_PLACES[0]
        ip = bad.ip(self.rng)
        fails = [self.login(victim, status="Invalid Password", place=bad, ip=ip) for _ in range(12)]
        return [*fails, self.login(victim, place=bad, ip=ip)]

    def _password_spray(self) -> list[Activity]:
        ip = ATTACKER_PLACES[1].ip(self.rng)
        return [
            self.login(u, status="Invalid Password", place=ATTACKER_PLACES[1], ip=ip, api=True)
            for u in self.users[2:14]
        ]

    def _impossible_travel(self) -> list[Activity]:
        user = self.users[5]
        first = self.login(user, place=user.home)
        far = next(p for p in (*ATTACKER_PLACES,) if p.iso != user.home.iso)
        return [first, self.login(user, place=far, at=first.at + timedelta(minutes=20))]

    def _mass_export(self) -> list[Activity]:
        return [self.report(self.users[6], export=True, rows=50_000) for _ in range(6)]

    def _bulk_exfil(self) -> list[Activity]:
        return [self.bulk_api(self.users[7], rows=250_000, entity=e) for e in ("Contact", "Lead", "Account")]

    def _privilege_grant(self) -> list[Activity]:
        return [self.permission_set_assign(self.users[8])]

    def _ip_range(self) -> list[Activity]:
        return [
            self.admin_action(
                "createipwhitelist",
                "Network Access",
                "Added Trusted IP Range from 0.0.0.0 to 255.255.255.255",
            )
        ]

    def _password_policy(self) -> list[Activity]:
        return [
            self.admin_action(
                "passwordexpiry",
                "Password Policies",
                "Changed password expiration period from 90 days to Never expires",
            )
        ]


def place_ip(traffic: Traffic) -> User:
    """Give a victim a session from an attacker range (for SessionHijackingEvent) and return the victim."""
    victim = traffic.users[9]
    traffic._sessions[victim.id] = traffic._new_session(victim, ATTACKER_PLACES[0], None)
    return victim


def iter_all(traffic: Traffic, scenario: str, count: int = 200) -> Iterator[Activity]:
    """Baseline traffic, followed by the attacks when ``scenario == "attacks"``."""
    yield from traffic.baseline(count)
    if scenario == "attacks":
        yield from traffic.attacks()
