"""A small test-only Salesforce org for EventLogFile/SetupAuditTrail fault tests, over real HTTP.

It answers the token, query/queryMore and LogFile resources like Salesforce (facts A, C, D) and lets a
test script faults per request. The shared simulator covers the full org; this one exists so the source
tests can script exact fault sequences (503, 503, OK; a reset after N bytes; INVALID_FIELD) cheaply.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from forwarder.records import Position, Record
from forwarder.salesforce.auth import Authenticator, SalesforceConfig
from forwarder.salesforce.rest import RestClient

V = "v62.0"
JSON = "application/json;charset=UTF-8"


def sf_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def csv_body(header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    def line(values: Sequence[str]) -> str:
        return ",".join('"' + v.replace('"', '""') + '"' for v in values) + "\n"

    return (line(header) + "".join(line(r) for r in rows)).encode()


@dataclass
class FakeOrg:
    url: str = ""
    page_size: int = 200
    files: list[dict[str, Any]] = field(default_factory=list)
    bodies: dict[str, bytes] = field(default_factory=dict)
    audit: list[dict[str, Any]] = field(default_factory=list)
    hidden: set[str] = field(default_factory=set)
    file_faults: dict[str, list[str]] = field(default_factory=dict)  # "503", "404", "404!" forever, "reset"
    query_faults: list[str] = field(default_factory=list)  # "limit", "html", "empty", "[]", "noid", "503"
    more_faults: list[str] = field(default_factory=list)  # same, for queryMore
    no_interval_field: bool = False
    downloads: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    longest_uri: int = 0
    _cursors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    runner: Any = None

    def add_file(
        self,
        ident: str,
        event_type: str,
        created: datetime,
        rows: Sequence[Sequence[str]],
        *,
        header: Sequence[str] = ("EVENT_TYPE", "TIMESTAMP", "USER_ID", "RUN_TIME"),
        types: str = "String,String,Id,Number",
        interval: str = "Hourly",
        sequence: int = 1,
        log_date: datetime | None = None,
    ) -> None:
        hour = (log_date or created).replace(minute=0, second=0, microsecond=0)
        if interval == "Daily":
            hour, sequence = hour.replace(hour=0), 0
        self.files.append({
            "attributes": {"type": "EventLogFile", "url": f"/services/data/{V}/sobjects/EventLogFile/{ident}"},
            "Id": ident, "EventType": event_type, "LogDate": sf_time(hour), "CreatedDate": sf_time(created),
            "Interval": interval, "Sequence": sequence, "LogFileLength": 0.0,
            "LogFileFieldNames": ",".join(header), "LogFileFieldTypes": types,
            "LogFile": f"/services/data/{V}/sobjects/EventLogFile/{ident}/LogFile",
        })
        self.bodies[ident] = csv_body(header, rows)

    def add_audit(self, ident: str, created: datetime, action: str = "PermSetAssign") -> None:
        self.audit.append({
            "attributes": {"type": "SetupAuditTrail", "url": f"/services/data/{V}/sobjects/SetupAuditTrail/{ident}"},
            "Id": ident, "Action": action, "Section": "Manage Users", "Display": f"did {action}",
            "CreatedDate": sf_time(created), "CreatedById": "005000000000001AAA",
            "CreatedBy": {"attributes": {"type": "User"}, "Username": "admin@example.com", "Name": "Ad Min"},
            "DelegateUser": None, "ResponsibleNamespacePrefix": None, "CreatedByContext": None,
        })

    # --- query ------------------------------------------------------------------------------------------

    def _select(self, soql: str) -> list[dict[str, Any]]:
        if soql.split(" FROM ")[1].startswith("SetupAuditTrail"):
            pool = self.audit
        else:
            pool = [f for f in self.files if f["Id"] not in self.hidden]
            if "Interval = 'Hourly'" in soql:
                pool = [f for f in pool if f["Interval"] == "Hourly"]
            elif "Interval = 'Daily'" in soql or self.no_interval_field:
                pool = [f for f in pool if f["Interval"] == "Daily"]
            types = re.search(r"EventType IN \(([^)]*)\)", soql)
            if types:
                wanted = {t.strip().strip("'") for t in types[1].split(",")}
                pool = [f for f in pool if f["EventType"] in wanted]
        for field_name, op, value in re.findall(r"(CreatedDate|LogDate) (>=|<|>) (\S+Z)", soql):
            bound = datetime.fromisoformat(value)
            pool = [r for r in pool if _compare(datetime.fromisoformat(r[field_name]), op, bound)]
        pool = [r for r in pool if r["Id"] not in self.hidden]
        return sorted(pool, key=lambda r: (datetime.fromisoformat(r["CreatedDate"]), r["Id"]))

    async def query(self, request: web.Request) -> web.Response:
        self.longest_uri = max(self.longest_uri, len(str(request.url)))
        fault = self.query_faults.pop(0) if self.query_faults else None
        if fault is not None:
            return _fault_answer(fault)
        soql = request.query["q"]
        self.queries.append(soql)
        if self.no_interval_field and "Interval" in soql:
            body = [{"message": "\nInterval\n^\nERROR at Row:1:Column:8\nNo such column 'Interval' on entity"
                     " 'EventLogFile'.", "errorCode": "INVALID_FIELD"}]
            return web.Response(status=400, body=orjson.dumps(body), content_type="application/json")
        if soql.startswith("SELECT COUNT()"):
            body = {"totalSize": len(self._select(soql)), "done": True, "records": []}
            return web.Response(body=orjson.dumps(body), content_type="application/json",
                                headers={"Sforce-Limit-Info": "api-usage=500/10000"})
        return self._page(self._select(soql), len(self._cursors))

    async def query_more(self, request: web.Request) -> web.Response:
        self.longest_uri = max(self.longest_uri, len(str(request.url)))
        if self.more_faults:
            return _fault_answer(self.more_faults.pop(0))
        locator, offset = request.match_info["locator"].rsplit("-", 1)
        return self._page(self._cursors[locator], int(locator[3:]), int(offset))

    def _page(self, rows: list[dict[str, Any]], cursor: int, offset: int = 0) -> web.Response:
        locator = f"01g{cursor}"
        self._cursors[locator] = rows
        chunk = rows[offset : offset + self.page_size]
        done = offset + self.page_size >= len(rows)
        body: dict[str, Any] = {"totalSize": len(rows), "done": done, "records": chunk}
        if not done:
            body["nextRecordsUrl"] = f"/services/data/{V}/query/{locator}-{offset + self.page_size}"
        return web.Response(body=orjson.dumps(body), content_type="application/json",
                            headers={"Sforce-Limit-Info": "api-usage=10/100000"})

    # --- LogFile ----------------------------------------------------------------------------------------

    async def log_file(self, request: web.Request) -> web.StreamResponse:
        ident = request.match_info["id"]
        self.downloads.append(ident)
        faults = self.file_faults.get(ident, [])
        fault = faults[0] if faults else None
        if fault is not None and not fault.endswith("!"):
            faults.pop(0)
        if fault in ("404", "404!"):
            body = orjson.dumps([{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}])
            return web.Response(status=404, body=body, content_type="application/json")
        if fault in ("503", "503!"):
            return web.Response(status=503, text="<html>Service Unavailable</html>", content_type="text/html")
        if fault == "limit":
            return _fault_answer("limit")
        data = self.bodies[ident]
        resp = web.StreamResponse(headers={"Content-Type": "application/octetstream",
                                           "Sforce-Limit-Info": "api-usage=11/100000"})
        if fault == "reset":
            await resp.prepare(request)
            await resp.write(data[: len(data) // 2])
            assert request.transport is not None
            request.transport.abort()
            return resp
        resp.headers["Content-Encoding"] = "gzip"
        await resp.prepare(request)
        await resp.write(gzip.compress(data, 1))
        await resp.write_eof()
        return resp


def _compare(left: datetime, op: str, right: datetime) -> bool:
    return {">=": left >= right, "<": left < right, ">": left > right}[op]


def _fault_answer(fault: str) -> web.Response:
    if fault == "limit":
        body = orjson.dumps([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
        return web.Response(status=403, body=body, content_type="application/json", headers={"Retry-After": "0"})
    if fault == "503":
        return web.Response(status=503, text="busy")
    if fault == "forbidden":
        body = orjson.dumps([{"message": "insufficient access rights", "errorCode": "INSUFFICIENT_ACCESS"}])
        return web.Response(status=403, body=body, content_type="application/json")
    if fault == "html":
        return web.Response(status=200, text="<html>maintenance</html>", content_type="text/html")
    if fault == "empty":
        return web.Response(status=200, body=b"", content_type="application/json")
    if fault == "[]":
        return web.Response(status=200, body=b"[]", content_type="application/json")
    if fault == "noid":
        records = [{"attributes": {"type": "EventLogFile"}, "EventType": "Login"}]
        body = orjson.dumps({"totalSize": 1, "done": True, "records": records})
        return web.Response(status=200, body=body, content_type="application/json")
    raise AssertionError(fault)


@asynccontextmanager
async def serve_org(org: FakeOrg) -> AsyncIterator[RestClient]:
    async def token(request: web.Request) -> web.Response:
        return web.json_response({"access_token": "tok", "instance_url": org.url})

    app = web.Application()
    app.router.add_post("/services/oauth2/token", token)
    app.router.add_get(f"/services/data/{V}/query", org.query)
    app.router.add_get(f"/services/data/{V}/query/{{locator}}", org.query_more)
    app.router.add_get(f"/services/data/{V}/sobjects/EventLogFile/{{id}}/LogFile", org.log_file)
    await org_started(app, org)
    cfg = SalesforceConfig.model_validate(
        {"login_url": org.url, "auth": {"type": "client_credentials", "client_id": "c", "client_secret": "s"}}
    )
    try:
        async with aiohttp.ClientSession() as http:
            yield RestClient(Authenticator(cfg, http), http, "62.0")
    finally:
        await org.runner.cleanup()


async def org_started(app: web.Application, org: FakeOrg) -> None:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    org.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    org.runner = runner


class Crash(Exception):
    """Stands for kill -9 between two journal appends."""


@dataclass
class Journal:
    """Test-only stand-in for the journal: keeps what a durable append would (records + last position)."""

    records: list[Record] = field(default_factory=list)
    position: Position | None = None
    appends: int = 0
    crash_at: int | None = None

    async def emit(self, records: Sequence[Record], position: Position | None) -> None:
        self.appends += 1
        if self.crash_at is not None and self.appends >= self.crash_at:
            self.crash_at = None
            raise Crash
        self.records.extend(records)
        self.position = orjson.loads(orjson.dumps(position))  # what survives is JSON
