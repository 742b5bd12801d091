"""Authentication activities: login (stream, LoginEvent, LoginHistory, ELF), logout, login-as."""

from __future__ import annotations

from datetime import datetime, timedelta

from forwarder.testing.simulator import formats as fmt
from forwarder.testing.simulator.people import API_CLIENTS, Place, User
from forwarder.testing.simulator.traffic.base import TrafficBase
from forwarder.testing.simulator.traffic.model import (
    BIG_OBJECT_ID,
    LOGIN_STATUS_CODES,
    LOGIN_TYPE_CODES,
    Activity,
)


class IdentityTraffic(TrafficBase):
    """Logins, logouts and Login-As."""

    def login(
        self,
        who: User | str | None = None,
        *,
        at: datetime | None = None,
        status: str = "Success",
        place: Place | None = None,
        ip: str | None = None,
        login_type: str = "Application",
        api: bool = False,
    ) -> Activity:
        """A login as LoginEventStream payload, LoginEvent + LoginHistory records and an ELF Login row."""
        user = self.user(who)
        session = self._new_session(user, place, ip)
        if status == "Success":
            self._sessions[user.id] = session
        ctx = self._ctx(user, at, session)
        browser, browser_name, platform, _ = session.browser
        if api:
            browser, browser_name, platform = self.rng.choice(API_CLIENTS), "Unknown", "Unknown"
            login_type = "Remote Access 2.0"
        history_id = fmt.new_id18(self.rng, "0Ya")
        geo_id = fmt.new_id15(self.rng, "04F")
        url = "login.salesforce.com" if api else "acme.my.salesforce.com"
        payload = self._stream(
            ctx,
            AdditionalInfo="{}",
            ApiType="SOAP Partner" if api and status != "Success" else "N/A",
            ApiVersion="62.0" if api and status != "Success" else "N/A",
            Application="Browser" if not api else "sf-forwarder integration",
            AuthMethodReference=None,
            AuthServiceId=None,
            Browser=browser_name,
            CipherSuite="ECDHE-RSA-AES256-GCM-SHA384",
            City=session.place.city,
            ClientVersion="N/A",
            Country=session.place.country,
            CountryIso=session.place.iso,
            HttpMethod="POST",
            LoginGeoId=geo_id,
            LoginHistoryId=history_id,
            LoginLatitude=session.place.lat,
            LoginLongitude=session.place.lon,
            LoginType=login_type,
            LoginUrl=url,
            Platform=platform,
            PostalCode=session.place.postal,
            Status=status,
            Subdivision=session.place.subdivision,
            TlsProtocol="TLS 1.2",
            UserType="Standard",
            SessionKey=session.session_key if status == "Success" else None,
        )
        elf = self._elf(
            ctx,
            "Login",
            URI="/services/oauth2/token" if api else "/index.jsp",
            SESSION_KEY="",
            LOGIN_TYPE=LOGIN_TYPE_CODES.get(login_type, "A"),
            DB_TOTAL_TIME=self.rng.randrange(10**7, 10**8),
            BROWSER_TYPE=browser,
            API_TYPE="",
            API_VERSION="9998.0",
            USER_NAME=user.username,
            TLS_PROTOCOL="TLSv1.2",
            CIPHER_SUITE="ECDHE-RSA-AES256-GCM-SHA384",
            LOGIN_STATUS=LOGIN_STATUS_CODES.get(status, "LOGIN_ERROR_INVALID_PASSWORD"),
            SOURCE_IP=session.ip,
            # OAuth token logins record the literal "Salesforce.com IP" (Login Event Type v67; AppOmni row)
            CLIENT_IP="Salesforce.com IP" if api else session.ip,
        )
        history = {
            "Id": history_id,
            "UserId": user.id,
            "LoginTime": fmt.rest_datetime(ctx.at),
            "LoginType": login_type,
            "SourceIp": session.ip,
            "LoginUrl": url,
            "Browser": browser_name,
            "Platform": platform,
            "Status": status,
            "Application": payload["Application"],
            "ClientVersion": "N/A",
            "ApiType": "N/A",
            "ApiVersion": "N/A",
            "CountryIso": session.place.iso,
            "LoginGeoId": geo_id,
            "TlsProtocol": "TLS 1.2",
            "CipherSuite": "ECDHE-RSA-AES256-GCM-SHA384",
            "AuthMethodReference": None,
            "LoginSubType": None,
            "NetworkId": None,
            "ForwardedForIp": None,
            "AuthenticationServiceId": None,
            "OptionsIsGet": False,
            "OptionsIsPost": True,  # LoginHistory object reference: how the login form was submitted
        }
        return self._activity("login", ctx, "LoginEventStream", payload, {"Login": elf}, LoginHistory=history)

    def logout(self, who: User | str | None = None, *, at: datetime | None = None) -> Activity:
        ctx = self._ctx(who, at)
        payload = self._stream(ctx)
        for key in ("PolicyId", "PolicyOutcome", "EvaluationTime"):
            payload.pop(key)
        browser, _, _, platform_code = ctx.session.browser
        # Real Logout ELF values are verbose, not the doc's single letters (Beats/AppOmni rows, facts A4)
        elf = self._elf(
            ctx,
            "Logout",
            USER_TYPE="Standard(db=S,api=Standard)",
            SESSION_TYPE="UI",
            SESSION_LEVEL="STANDARD(db=1,api=STANDARD)",
            BROWSER_TYPE=browser,
            PLATFORM_TYPE=platform_code,
            RESOLUTION_TYPE=9999,
            APP_TYPE=1000,
            CLIENT_VERSION=9998,
            USER_INITIATED_LOGOUT=1,
        )
        self._sessions.pop(ctx.user.id, None)
        return self._activity("logout", ctx, "LogoutEventStream", payload, {"Logout": elf})

    def identity_verification(
        self,
        who: User | str | None = None,
        *,
        at: datetime | None = None,
        status: str = "Succeeded",
        method: str = "Totp",
    ) -> Activity:
        """An MFA challenge: IdentityVerificationEvent is storage-only (query it; no stream, facts B1)."""
        ctx = self._ctx(who, at)
        place = ctx.session.place
        record = {
            "Id": BIG_OBJECT_ID, "Activity": "Login", "City": place.city, "Country": place.country,
            "CountryIso": place.iso, "CreatedDate": fmt.rest_datetime(ctx.at + timedelta(seconds=4)),
            "EventDate": fmt.rest_datetime(ctx.at), "EventGroup": f"{self.rng.randrange(10**9):09d}",
            "EventIdentifier": ctx.event_id, "Latitude": place.lat,
            "LoginHistoryId": fmt.new_id18(self.rng, "0Ya"), "LoginKey": ctx.session.login_key,
            "Longitude": place.lon, "Policy": "TwoFactorAuthentication", "PostalCode": place.postal,
            "Remarks": None, "ResourceId": None, "SessionKey": ctx.session.session_key,
            "SessionLevel": "STANDARD", "SourceIp": ctx.session.ip, "Status": status,
            "Subdivision": place.subdivision, "UserId": ctx.user.id, "Username": ctx.user.username,
            "VerificationMethod": method,
        }  # fmt: skip
        return self._activity("identity_verification", ctx, None, None, IdentityVerificationEvent=record)

    def login_as(
        self, admin: User | str | None = None, target: User | str | None = None, *, at: datetime | None = None
    ) -> Activity:
        """An admin logs in as another user: LoginAsEventStream, ELF LoginAs, SetupAuditTrail entry."""
        admin_user = self.user(admin or self.users[0])
        target_user = self.user(target)
        ctx = self._ctx(admin_user, at)
        payload = self._stream(
            ctx,
            UserId=target_user.id,
            Username=target_user.username,
            DelegatedUsername=admin_user.username,
            DelegatedOrganizationId=self.org_id,
            TargetUrl="/home/home.jsp",
            LoginType="Application",
            Application="Browser",
            Browser=ctx.session.browser[1],
            Platform=ctx.session.browser[2],
            LoginHistoryId=fmt.new_id18(self.rng, "0Ya"),
            SessionLevel="STANDARD",
        )
        elf = self._elf(
            ctx,
            "LoginAs",
            USER_ID=target_user.id15,
            USER_ID_DERIVED=target_user.id,
            URI="/servlet/servlet.su",
            DELEGATED_USER_ID=admin_user.id15,
            DELEGATED_USER_ID_DERIVED=admin_user.id,
            DELEGATED_USER_NAME=admin_user.username,
        )
        audit = self._audit_record(
            ctx,
            admin_user,
            "suOrgAdminLogin",
            "Manage Users",
            f"Logged in using Login-As access for {target_user.name}",
        )
        return self._activity(
            "login_as", ctx, "LoginAsEventStream", payload, {"LoginAs": elf}, SetupAuditTrail=audit
        )
