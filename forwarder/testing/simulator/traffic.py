"""Seeded, deterministic Salesforce traffic: each activity in every form a client can see it.

One ``Activity`` (a login, a report export...) carries its CometD payload, its RTEM storage-object and
LoginHistory/SetupAuditTrail records for SOQL, and its EventLogFile row, so cross-source tests can check that
the same login normalises alike. Usable without HTTP: ``Traffic(seed).login()``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from forwarder.testing.simulator import formats as fmt
from forwarder.testing.simulator.people import (
    API_CLIENTS,
    ATTACKER_PLACES,
    BROWSERS,
    Place,
    User,
    make_users,
)
from forwarder.testing.simulator.schemas import COLUMNS

BIG_OBJECT_ID = "000000000000000AAA"  # storage big objects carry a placeholder Id (AppOmni LoginEvent row)
DEFAULT_START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)

#: RTEM stream channel -> storage object (Platform Events Dev Guide v67 "Real-Time Event Monitoring
#: Objects", facts B1); None = stream only.
CHANNELS: dict[str, str | None] = {
    "LoginEventStream": "LoginEvent",
    "LogoutEventStream": "LogoutEvent",
    "LoginAsEventStream": "LoginAsEvent",
    "ApiEventStream": "ApiEvent",
    "LightningUriEventStream": "LightningUriEvent",
    "UriEventStream": "UriEvent",
    "ListViewEventStream": "ListViewEvent",
    "ReportEventStream": "ReportEvent",
    "BulkApiResultEvent": "BulkApiResultEventStore",
    "FileEvent": "FileEventStore",
    "PermissionSetEvent": "PermissionSetEventStore",
    "ApiAnomalyEvent": "ApiAnomalyEventStore",
    "CredentialStuffingEvent": "CredentialStuffingEventStore",
    "ReportAnomalyEvent": "ReportAnomalyEventStore",
    "SessionHijackingEvent": "SessionHijackingEventStore",
    "LoginAnomalyEvent": "LoginAnomalyEventStore",
    "GuestUserAnomalyEvent": "GuestUserAnomalyEventStore",
    "ConcurLongRunApexErrEvent": None,
    "MobileEmailEvent": None,
    "MobileEnforcedPolicyEvent": None,
    "MobileScreenshotEvent": None,
    "MobileTelephonyEvent": None,
}

#: Alert names the attack scenarios are marked with (what the rule engine should raise).
ALERTS = (
    "brute_force_then_success",
    "password_spray",
    "impossible_travel",
    "mass_report_export",
    "bulk_api_exfiltration",
    "admin_privilege_grant",
    "ip_range_change",
    "password_policy_change",
    "login_as",
    "session_hijacking",
    "credential_stuffing",
)

# LoginEventStream.LoginType display value -> ELF LOGIN_TYPE code (Login Event Type v67, facts A6)
LOGIN_TYPE_CODES = {
    "Application": "A",
    "Remote Access 2.0": "i",
    "SAML Sfdc Initiated SSO": "8",
    "Other Apex API": "I",
    "Remote Access Client": "6",
}
# LoginEventStream.Status -> ELF LOGIN_STATUS (Login Event Type v67; LoginHistory Status picklist)
LOGIN_STATUS_CODES = {
    "Success": "LOGIN_NO_ERROR",
    "Invalid Password": "LOGIN_ERROR_INVALID_PASSWORD",
    "Invalid Username": "LOGIN_ERROR_INVALID_USERNAME",
    "Password Lockout": "LOGIN_ERROR_PASSWORD_LOCKOUT",
    "Failed: Missing Consumer Key Parameter": "LOGIN_OAUTH_NO_CONSUMER",
}


@dataclass(frozen=True)
class Activity:
    """One thing that happened in the org, in every form Salesforce exposes it.

    ``channel``/``payload``: the CometD event (``/event/X`` and its ``data.payload``); ``objects``: SOQL
    object name -> record fields (RTEM storage object, LoginHistory, SetupAuditTrail), REST-formatted;
    ``elf``: EventLogFile EventType -> row (column -> CSV string), in column order; ``alert``: the alert
    an attack scenario should raise.
    """

    kind: str
    at: datetime
    user: str
    channel: str | None = None
    payload: dict[str, Any] | None = None
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    elf: dict[str, dict[str, str]] = field(default_factory=dict)
    scenario: str = "baseline"
    alert: str | None = None

    @property
    def event_identifier(self) -> str | None:
        return None if self.payload is None else self.payload.get("EventIdentifier")


@dataclass
class _Session:
    login_key: str
    session_key: str
    ip: str
    place: Place
    browser: tuple[str, str, str, int]


@dataclass(frozen=True)
class _Ctx:
    user: User
    at: datetime
    session: _Session
    request_id: str
    event_id: str


class Traffic:
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
        self._sessions: dict[str, _Session] = {}
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

    def _new_session(self, user: User, place: Place | None, ip: str | None) -> _Session:
        place = place or user.home
        return _Session(
            fmt.token(self.rng, 16, fmt.BASE64),
            fmt.token(self.rng, 16, fmt.BASE64),
            ip or place.ip(self.rng),
            place,
            self.rng.choice(BROWSERS),
        )

    def _ctx(self, who: User | str | None, at: datetime | None, session: _Session | None = None) -> _Ctx:
        user = self.user(who)
        if session is None:
            session = self._sessions.get(user.id) or self._new_session(user, None, None)
            self._sessions.setdefault(user.id, session)
        return _Ctx(user, self._tick(at), session, fmt.token(self.rng, 22), fmt.uuid4(self.rng))

    def _stream(self, ctx: _Ctx, **fields: Any) -> dict[str, Any]:
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

    def _elf(self, ctx: _Ctx, event_type: str, **values: Any) -> dict[str, str]:
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
        return {col: _csv_value(base.get(col, "")) for col, _ in COLUMNS[event_type]}

    def _activity(
        self,
        kind: str,
        ctx: _Ctx,
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

    # --- authentication ------------------------------------------------------------------------------------
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

    # --- data access ---------------------------------------------------------------------------------------
    def api_query(
        self,
        who: User | str | None = None,
        *,
        at: datetime | None = None,
        entity: str = "Account",
        rows: int | None = None,
    ) -> Activity:
        """A SOAP API query: ApiEventStream, ELF API and ELF ApiTotalUsage."""
        ctx = self._ctx(who, at)
        rows = self.rng.randrange(1, 500) if rows is None else rows
        query = _soql("SELECT Id, Name, Phone FROM", entity)
        client = self.rng.choice(API_CLIENTS)
        payload = self._stream(
            ctx,
            ApiType="SOAP Partner",
            ApiVersion=62.0,
            Application="N/A",
            Client=client,
            ElapsedTime=self.rng.randrange(10, 2000),
            Operation="Query",
            QueriedEntities=entity,
            Query=query,
            Records='{"totalSize":' + str(rows) + ',"records":[]}',
            RowsProcessed=float(rows),
            RowsReturned=float(rows),
            UserAgent=client,
            AdditionalInfo="{}",
            Platform="Unknown",
            RequestIdentifier=ctx.request_id,
            OperationStatus="SUCCESS",
            LoginHistoryId=fmt.new_id18(self.rng, "0Ya"),
            ConnectedAppId=None,
        )
        api = self._elf(
            ctx,
            "API",
            URI="Api",
            API_TYPE="P",
            API_VERSION="62.0",
            CLIENT_NAME=client,
            METHOD_NAME="query",
            ENTITY_NAME=entity,
            ROWS_PROCESSED=rows,
            REQUEST_SIZE=self.rng.randrange(300, 3000),
            RESPONSE_SIZE=rows * 180,
            DB_BLOCKS=self.rng.randrange(10, 9000),
            DB_CPU_TIME=self.rng.randrange(1, 90),
            DB_TOTAL_TIME=self.rng.randrange(10**6, 10**8),
            QUERY=query,
        )
        return self._activity(
            "api_query",
            ctx,
            "ApiEventStream",
            payload,
            {"API": api, "ApiTotalUsage": self._usage(ctx, "SOAP", "query", entity, client)},
        )

    def _usage(self, ctx: _Ctx, family: str, resource: str, entity: str, client: str) -> dict[str, str]:
        return self._elf(
            ctx,
            "ApiTotalUsage",
            USER_NAME=ctx.user.username,
            API_FAMILY=family,
            API_VERSION="62.0",
            API_RESOURCE=resource,
            HTTP_METHOD="POST" if family == "SOAP" else "GET",
            STATUS_CODE=200,
            ENTITY_NAME=entity,
            CLIENT_NAME=client,
            CONNECTED_APP_ID=fmt.new_id15(self.rng, "0H4"),
            CONNECTED_APP_NAME="sf-forwarder",
            API_CLIENT_CATEGORY="EXTERNAL_APPLICATION",
            COUNTS_AGAINST_API_LIMIT="true",
        )

    def rest_call(self, who: User | str | None = None, *, at: datetime | None = None) -> Activity:
        ctx = self._ctx(who, at)
        uri = "/services/data/v62.0/sobjects/Account/describe"
        rest = self._elf(
            ctx,
            "RestApi",
            URI=uri,
            REQUEST_STATUS="S",
            DB_TOTAL_TIME=self.rng.randrange(10**6, 10**9),
            METHOD="GET",
            MEDIA_TYPE="application/json;charset=UTF-8",
            STATUS_CODE=200,
            USER_AGENT=9999,
            DB_BLOCKS=self.rng.randrange(1, 5000),
            DB_CPU_TIME=self.rng.randrange(1, 200),
            REQUEST_SIZE=0,
            RESPONSE_SIZE=self.rng.randrange(1000, 200000),
            ENTITY_NAME="Account",
        )
        usage = self._usage(ctx, "REST", uri.removeprefix("/services/data"), "Account", API_CLIENTS[0])
        return self._activity("rest_call", ctx, None, None, {"RestApi": rest, "ApiTotalUsage": usage})

    def report(
        self,
        who: User | str | None = None,
        *,
        at: datetime | None = None,
        export: bool = False,
        rows: int | None = None,
    ) -> Activity:
        """A report run (or export: it appears in both Report and ReportExport, facts A6)."""
        ctx = self._ctx(who, at)
        report_id = fmt.new_id15(self.rng, "00O")
        rows = self.rng.randrange(5, 2000) if rows is None else rows
        payload = self._stream(
            ctx,
            ColumnHeaders="[Account Name, Owner, Annual Revenue]",
            EventSource="Lightning",
            ExecutionIdentifier=fmt.uuid4(self.rng),
            ExportFileFormat="CSV" if export else None,
            Format="Tabular",
            IsScheduled=False,
            Name="Top Accounts",
            NumberOfColumns=3,
            Operation="ReportExported" if export else "ReportRunFromLightning",
            OwnerId=ctx.user.id,
            QueriedEntities="Account",
            Records=None,
            ReportId=fmt.id18(report_id),
            RowsProcessed=float(rows),
            Scope="organization",
            Sequence=1,
            Description=None,
            DashboardId=None,
            DashboardName=None,
            DisplayedFieldEntities="Account",
            GroupedColumnHeaders=None,
            LoginHistoryId=None,
        )
        elf = {
            "Report": self._elf(
                ctx,
                "Report",
                URI=f"/{report_id}",
                REQUEST_STATUS="S",
                REPORT_ID=report_id,
                ENTITY_NAME="Account",
                DISPLAY_TYPE="S",
                RENDERING_TYPE="W",
                NUMBER_EXCEPTION_FILTERS=0,
                NUMBER_COLUMNS=3,
                AVERAGE_ROW_SIZE=120,
                ROW_COUNT=rows,
                NUMBER_BUCKETS=0,
                ORIGIN="ReportRunFromLightning",
                DB_TOTAL_TIME=self.rng.randrange(10**6, 10**9),
                DB_BLOCKS=rows,
                DB_CPU_TIME=10,
            )
        }
        if export:
            elf["ReportExport"] = self._elf(
                ctx,
                "ReportExport",
                URI=f"/{report_id}",
                CLIENT_INFO="Details Only",
                REPORT_ID=report_id,
                REPORT_DESCRIPTION="Top accounts by revenue",
            )
        return self._activity("report_export" if export else "report", ctx, "ReportEventStream", payload, elf)

    def page_view(self, who: User | str | None = None, *, at: datetime | None = None) -> Activity:
        ctx = self._ctx(who, at)
        record = fmt.new_id18(self.rng, "001")
        payload = self._stream(
            ctx,
            AppName="one:one",
            ConnectionType="WIFI",
            DeviceId=None,
            DevicePlatform="SFX:BROWSER:DESKTOP",
            Duration=float(self.rng.randrange(100, 5000)),
            EffectivePageTime=float(self.rng.randrange(100, 3000)),
            Operation="Read",
            OsName=ctx.session.browser[2],
            PageUrl=f"/lightning/r/Account/{record}/view",
            QueriedEntities="Account",
            RecordId=record,
            UserAgent=ctx.session.browser[0],
            UserType="Standard",
            PreviousPageUrl="/lightning/page/home",
            PageStartTime=fmt.stream_datetime(ctx.at),
            DeviceModel=None,
            DeviceSessionId=fmt.token(self.rng, 40, "0123456789abcdef"),
            OsVersion={"Windows 10": "10", "Mac OSX": "10.15.7"}.get(ctx.session.browser[2]),
            PreviousPageAppName="LightningSales",
            PreviousPageEntityId=None,
            PreviousPageEntityType=None,
            SdkAppType=None,
            SdkAppVersion=None,
            SdkVersion=None,
        )
        elf = self._elf(
            ctx,
            "LightningPageView",
            PAGE_APP_NAME="LightningSales",
            PAGE_URL=payload["PageUrl"],
            PAGE_ENTITY_TYPE="Account",
            DURATION=int(payload["Duration"]),
            EFFECTIVE_PAGE_TIME=int(payload["EffectivePageTime"]),
            PAGE_START_TIME=int(ctx.at.timestamp() * 1000),
            UI_EVENT_SEQUENCE_NUM=self.rng.randrange(1, 40),
        )
        return self._activity(
            "page_view", ctx, "LightningUriEventStream", payload, {"LightningPageView": elf}
        )

    def uri(self, who: User | str | None = None, *, at: datetime | None = None) -> Activity:
        """A Classic page view: UriEventStream and ELF URI (REFERRER_URI has dots/colons replaced, A6)."""
        ctx = self._ctx(who, at)
        record = fmt.new_id15(self.rng, "001")
        payload = self._stream(
            ctx,
            Operation="Read",
            QueriedEntities="Account",
            RecordId=fmt.id18(record),
            Referrer="https://acme.my.salesforce.com/001/o",
            UserType="Standard",
            Message=None,
            Name="Acme Corporation",
            OperationStatus="Success",
        )
        elf = self._elf(
            ctx,
            "URI",
            URI=f"/{record}",
            REQUEST_STATUS="S",
            DB_TOTAL_TIME=self.rng.randrange(10**6, 10**8),
            DB_BLOCKS=20,
            DB_CPU_TIME=3,
            REFERRER_URI="https-//acme-my-salesforce-com/001/o",
        )
        return self._activity("uri", ctx, "UriEventStream", payload, {"URI": elf})

    def list_view(self, who: User | str | None = None, *, at: datetime | None = None) -> Activity:
        ctx = self._ctx(who, at)
        payload = self._stream(
            ctx,
            AppName="LightningSales",
            ColumnHeaders="Name,Phone,Owner",
            DeveloperName="AllAccounts",
            EventSource="Lightning",
            ExecutionIdentifier=fmt.uuid4(self.rng),
            FilterCriteria="{}",
            ListViewId=fmt.new_id18(self.rng, "00B"),
            Name="All Accounts",
            NumberOfColumns=3,
            OrderBy="Name ASC",
            OwnerId=ctx.user.id,
            QueriedEntities="Account",
            Records=None,
            RowsProcessed=25.0,
            Scope="Everything",
            Sequence=1,
            LoginHistoryId=fmt.new_id18(self.rng, "0Ya"),
        )
        return self._activity("list_view", ctx, "ListViewEventStream", payload)

    def bulk_api(
        self,
        who: User | str | None = None,
        *,
        at: datetime | None = None,
        rows: int = 1000,
        entity: str = "Contact",
    ) -> Activity:
        ctx = self._ctx(who, at)
        job, batch = fmt.new_id15(self.rng, "750"), fmt.new_id15(self.rng, "751")
        payload = self._stream(
            ctx,
            BatchId=fmt.id18(batch),
            JobId=fmt.id18(job),
            Query=_soql("SELECT Id, Email FROM", entity),
            QueriedEntities=entity,
            RowsProcessed=float(rows),
            Records=None,
            LoginHistoryId=fmt.new_id18(self.rng, "0Ya"),
        )
        # MESSAGE is a value Salesforce itself wraps in quotes: tripled in the CSV (sample_data2.csv)
        elf = self._elf(
            ctx,
            "BulkApi",
            URI="BULKAPI-LOG",
            JOB_ID=job,
            BATCH_ID=batch,
            ROWS_PROCESSED=rows,
            NUMBER_FAILURES=0,
            SUCCESS=1,
            MESSAGE='"success"',
            ENTITY_TYPE=entity,
            OPERATION_TYPE="query",
        )
        return self._activity("bulk_api", ctx, "BulkApiResultEvent", payload, {"BulkApi": elf})

    def file_download(self, who: User | str | None = None, *, at: datetime | None = None) -> Activity:
        ctx = self._ctx(who, at)
        doc, version = fmt.new_id15(self.rng, "069"), fmt.new_id15(self.rng, "068")
        size = self.rng.randrange(10_000, 50_000_000)
        payload = self._stream(
            ctx,
            FileAction="Download",
            FileName="forecast.xlsx",
            FileSource="S",
            FileType="EXCEL_X",
            ContentSize=float(size),
            DocumentId=fmt.id18(doc),
            VersionId=fmt.id18(version),
            ProcessDuration=0.2,
            CanDownloadPdf=False,
            IsLatestVersion=True,
            ContentDocumentId=fmt.id18(doc),
            ContentVersionId=fmt.id18(version),
        )
        elf = self._elf(
            ctx,
            "ContentTransfer",
            TRANSACTION_TYPE="VersionDownloadAction",
            DOCUMENT_ID=doc,
            DOCUMENT_ID_DERIVED=fmt.id18(doc),
            VERSION_ID=version,
            VERSION_ID_DERIVED=fmt.id18(version),
            FILE_TYPE="EXCEL_X",
            FILE_PREVIEW_TYPE="",
            SIZE_BYTES=size,
        )
        return self._activity("file_download", ctx, "FileEvent", payload, {"ContentTransfer": elf})

    def search(self, who: User | str | None = None, *, at: datetime | None = None) -> Activity:
        ctx = self._ctx(who, at)
        term = self.rng.choice(("acme", "renewal", "q4 forecast", "invoice"))
        # SEARCH_QUERY is quoted by Salesforce itself: tripled quotes in the CSV (AppOmni Search row)
        elf = self._elf(
            ctx,
            "Search",
            QUERY_ID=fmt.token(self.rng, 13),
            SEARCH_QUERY=f'"{term}*"',
            NUM_RESULTS=self.rng.randrange(0, 60),
            PREFIXES_SEARCHED="001,003,006",
        )
        return self._activity("search", ctx, None, None, {"Search": elf})

    def apex(self, who: User | str | None = None, *, at: datetime | None = None) -> Activity:
        ctx = self._ctx(who, at)
        elf = self._elf(
            ctx,
            "ApexExecution",
            URI="",
            EXEC_TIME=self.rng.randrange(1, 300),
            DB_TOTAL_TIME=0,
            CALLOUT_TIME=0,
            NUMBER_SOQL_QUERIES=self.rng.randrange(0, 20),
            ENTRY_POINT="VF- /apex/listApexClass.apexp",
            QUIDDITY="V",
            IS_LONG_RUNNING_REQUEST=0,
        )
        return self._activity("apex", ctx, None, None, {"ApexExecution": elf})

    # --- administration ------------------------------------------------------------------------------------
    def _audit_record(
        self, ctx: _Ctx, actor: User, action: str, section: str, display: str, delegate: str | None = None
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

    # --- scenarios -----------------------------------------------------------------------------------------
    def random_activity(self, at: datetime | None = None) -> Activity:
        """One ordinary activity (a login now and then, mostly work by logged-in users) at ``at``."""
        roll = self.rng.random()
        if roll < 0.1:
            return self.login(at=at)
        if roll < 0.13:
            return self.logout(at=at)
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
            out.extend(_mark(a, name) for a in builder())
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


def _mark(activity: Activity, alert: str) -> Activity:
    return Activity(
        activity.kind,
        activity.at,
        activity.user,
        activity.channel,
        activity.payload,
        activity.objects,
        activity.elf,
        scenario="attacks",
        alert=alert,
    )


def _soql(select: str, entity: str) -> str:
    """A query text recorded inside an event (never executed)."""
    return f"{select} {entity}"


def _csv_value(value: Any) -> str:
    return "" if value is None else str(value)


_STREAM_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def storage_record(payload: dict[str, Any]) -> dict[str, Any]:
    """RTEM storage-object record: the stream fields with REST datetimes (``+0000``, facts B3)."""
    out: dict[str, Any] = {"Id": BIG_OBJECT_ID}
    for key, value in payload.items():
        if isinstance(value, str) and _STREAM_DATETIME.fullmatch(value):
            value = fmt.rest_datetime(fmt.parse_datetime(value))
        out[key] = value
    return out


def iter_all(traffic: Traffic, scenario: str, count: int = 200) -> Iterator[Activity]:
    """Baseline traffic, followed by the attacks when ``scenario == "attacks"``."""
    yield from traffic.baseline(count)
    if scenario == "attacks":
        yield from traffic.attacks()
