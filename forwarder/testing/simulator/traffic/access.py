"""Data-access activities: API and REST calls, reports, page views, list views, bulk jobs, files, search."""

from __future__ import annotations

from datetime import datetime

from forwarder.testing.simulator import formats as fmt
from forwarder.testing.simulator.people import API_CLIENTS, User
from forwarder.testing.simulator.traffic.base import TrafficBase
from forwarder.testing.simulator.traffic.model import Activity, Ctx, soql_text


class AccessTraffic(TrafficBase):
    """Who read or exported what."""

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
        query = soql_text("SELECT Id, Name, Phone FROM", entity)
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

    def _usage(self, ctx: Ctx, family: str, resource: str, entity: str, client: str) -> dict[str, str]:
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
            Query=soql_text("SELECT Id, Email FROM", entity),
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
