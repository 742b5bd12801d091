"""REST API under ``/services/data``: versions, query/queryMore, EventLogFile describe/record/LogFile blob.

Shapes from the REST API Developer Guide v67 (facts D1/D2, A3): query bodies with ``totalSize`` over all
pages and ``nextRecordsUrl`` ``.../query/<locator>-<offset>``, ``Sforce-Limit-Info`` on every response but
the versions list, errors as JSON arrays, LogFile as a chunked CSV stream.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from forwarder.testing.simulator import soql
from forwarder.testing.simulator.describe import describe_event_log_file
from forwarder.testing.simulator.eventlogfile import compressed
from forwarder.testing.simulator.faults import Faults
from forwarder.testing.simulator.oauth import OAuth
from forwarder.testing.simulator.org import RELATIONSHIPS, OrgData
from forwarder.testing.simulator.responses import json_response, malformed_response, rest_error

MIN_VERSION, MAX_VERSION = 37, 67  # "every API version Salesforce accepts (37.0 up to 67.0)" (issue 3)
_SEASONS = ("Summer", "Spring", "Winter")  # 67.0 = Summer '26, 66.0 = Spring '26, 65.0 = Winter '26
_VERSIONED = re.compile(r"^/services/data/v(\d+\.\d)(/|$)")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def release_label(major: int) -> str:
    steps = MAX_VERSION - major
    return f"{_SEASONS[steps % 3]} '{26 - steps // 3}"


def versions(base: str = "") -> list[dict[str, str]]:
    """``GET /services/data/``: every supported version, oldest first (Versions resource)."""
    return [
        {"label": release_label(v), "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
        for v in range(MIN_VERSION, MAX_VERSION + 1)
    ]


def supported(version: str) -> bool:
    major, _, minor = version.partition(".")
    return minor == "0" and major.isdigit() and MIN_VERSION <= int(major) <= MAX_VERSION


@dataclass
class _Cursor:
    records: list[dict[str, Any]]
    batch: int


class Rest:
    """Handlers plus a middleware that applies faults, sessions, the API budget and ``Sforce-Limit-Info``."""

    def __init__(self, org: OrgData, oauth: OAuth, faults: Faults, *, api_limit: int, page_size: int) -> None:
        self.org, self.oauth, self.faults = org, oauth, faults
        self.api_limit, self.api_used = api_limit, 0
        self.page_size = page_size
        self.cursors: dict[str, _Cursor] = {}  # kept for the simulator's life: a page can be fetched again
        self.requests: list[str] = []  # paths seen, for tests

    def add_routes(self, app: web.Application) -> None:
        app.middlewares.append(self.middleware)
        r = app.router
        r.add_get("/services/data", self.versions)
        r.add_get("/services/data/", self.versions)
        base = "/services/data/v{version}"
        r.add_get(base, self.resources)
        r.add_get(base + "/", self.resources)
        for name in ("query", "queryAll"):
            r.add_get(f"{base}/{name}", self.query)
            r.add_get(f"{base}/{name}/", self.query)
            r.add_get(f"{base}/{name}/{{locator}}", self.query_more)
        r.add_get(base + "/limits", self.limits)
        r.add_get(base + "/limits/", self.limits)
        r.add_get(base + "/sobjects/EventLogFile/describe", self.describe)
        r.add_get(base + "/sobjects/EventLogFile/describe/", self.describe)
        r.add_get(base + "/sobjects/EventLogFile/{id}", self.log_file_record)
        r.add_get(base + "/sobjects/EventLogFile/{id}/LogFile", self.log_file)

    # --- cross-cutting -------------------------------------------------------------------------------------
    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_sim"):
            return await handler(request)
        self.requests.append(request.path_qs)
        if (too_long := _oversized(request)) is not None:
            return too_long
        await self.faults.delay()
        if self.faults.take_unavailable():
            # Maintenance/overload: 503 (Status Codes and Error Responses v67)
            return rest_error(
                503, "SERVER_UNAVAILABLE", "Server temporarily unavailable. Please try again later."
            )
        match = _VERSIONED.match(request.path)
        if match is None:
            return await handler(request)
        if not supported(match.group(1)):
            return rest_error(404, "NOT_FOUND", "The requested resource does not exist")
        header = request.headers.get("Authorization", "")
        if header and header.split(" ", 1)[0].lower() not in ("bearer", "oauth"):
            # a header in another scheme (compiled-rest-oauth-examples.json: error_401_invalid_auth_header)
            return rest_error(401, "INVALID_AUTH_HEADER", "INVALID_AUTH_HEADER")
        if not self.oauth.check(_token(request)):
            return rest_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        self.api_used += 1
        if self.faults.rate_limited or self.api_used > self.api_limit:
            return rest_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        response = await handler(request)
        if not response.prepared:
            response.headers["Sforce-Limit-Info"] = self.limit_info()
        return response

    def limit_info(self) -> str:
        """``api-usage=used/limit`` (Limit Info Header v67)."""
        return f"api-usage={min(self.api_used, self.api_limit)}/{self.api_limit}"

    # --- resources -----------------------------------------------------------------------------------------
    async def versions(self, request: web.Request) -> web.Response:
        return json_response(versions())

    async def resources(self, request: web.Request) -> web.Response:
        base = f"/services/data/v{request.match_info['version']}"
        names = ("sobjects", "query", "queryAll", "limits", "tooling")
        return json_response({name: f"{base}/{name}" for name in names})

    async def limits(self, request: web.Request) -> web.Response:
        remaining = max(self.api_limit - self.api_used, 0)
        return json_response({"DailyApiRequests": {"Max": self.api_limit, "Remaining": remaining}})

    async def query(self, request: web.Request) -> web.Response:
        version = request.match_info["version"]
        text = request.query.get("q")
        if text is None:
            return rest_error(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            query = soql.parse(text, self.org.schema())
        except soql.SoqlError as exc:
            return rest_error(400, exc.error_code, exc.message)
        if query.sobject in self.faults.denied_objects:
            # Without the object's permission Salesforce answers as if the type did not exist.
            return rest_error(400, "INVALID_TYPE", f"sObject type '{query.sobject}' is not supported.")
        matched = soql.execute(query, self.org.records(query.sobject, version))
        if query.count_only:
            return json_response({"totalSize": len(matched), "done": True, "records": []})
        projected = [_project(rec, query, version) for rec in matched]
        locator = "01g" + secrets.token_hex(8)[:15]
        self.cursors[locator] = _Cursor(projected, self._batch(request))
        return self._page(request, version, locator, 0)

    async def query_more(self, request: web.Request) -> web.Response:
        locator, _, offset = request.match_info["locator"].rpartition("-")
        cursor = self.cursors.get(locator)
        if cursor is None or not offset.isdigit():
            return rest_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(request, request.match_info["version"], locator, int(offset))

    def _batch(self, request: web.Request) -> int:
        """``Sforce-Query-Options: batchSize=N``: 200..2000; the server may return fewer (v67)."""
        header = request.headers.get("Sforce-Query-Options", "")
        match = re.search(r"batchSize=(\d+)", header)
        wanted = min(max(int(match.group(1)), 200), 2000) if match else 2000
        return min(wanted, self.page_size)

    def _page(self, request: web.Request, version: str, locator: str, offset: int) -> web.Response:
        cursor = self.cursors[locator]
        end = offset + cursor.batch
        records = cursor.records[offset:end]
        if kind := self.faults.take_malformed("query"):
            if kind != "no_id":
                return malformed_response(kind)
            records = [{k: v for k, v in rec.items() if k != "Id"} for rec in records]
        body: dict[str, Any] = {"totalSize": len(cursor.records), "done": end >= len(cursor.records)}
        if not body["done"]:
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{end}"
        body["records"] = records
        return json_response(body)

    async def describe(self, request: web.Request) -> web.Response:
        return json_response(describe_event_log_file(request.match_info["version"], self.org.hourly))

    async def log_file_record(self, request: web.Request) -> web.Response:
        version = request.match_info["version"]
        log_file = self.org.log_files.get(request.match_info["id"])
        if log_file is None or not self.org.visible(log_file):
            return rest_error(404, "NOT_FOUND", "The requested resource does not exist")
        record = self.org.elf_record(log_file, version)
        if not self.org.hourly:
            record.pop("Interval")
        url = f"/services/data/v{version}/sobjects/EventLogFile/{log_file.id}"
        return json_response({"attributes": {"type": "EventLogFile", "url": url}, **record})

    async def log_file(self, request: web.Request) -> web.StreamResponse:
        """The CSV body, chunked; gzip/deflate when asked (Compression Headers v67)."""
        log_file = self.org.log_files.get(request.match_info["id"])
        if log_file is None or not self.org.visible(log_file):
            return rest_error(404, "NOT_FOUND", "The requested resource does not exist")
        encoding = _encoding(request.headers.get("Accept-Encoding", ""))
        response = web.StreamResponse(
            headers={
                # the doc sample's literal content type (dome_event_log_file_blob.htm)
                "Content-Type": "application/octetstream",
                "Sforce-Limit-Info": self.limit_info(),
                "Vary": "Accept-Encoding",
                **({"Content-Encoding": encoding} if encoding else {}),
            }
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunks = log_file.chunks()
        body = compressed(chunks, encoding) if encoding else chunks
        await self._stream(request, response, body)
        return response

    async def _stream(self, request: web.Request, response: web.StreamResponse, body: Any) -> None:
        cut = self.faults.take_reset()
        sent = 0
        for chunk in body:
            if cut is not None and sent + len(chunk) >= cut:
                await response.write(chunk[: cut - sent])
                if request.transport is not None:
                    request.transport.abort()  # connection reset mid-body
                return
            await response.write(chunk)
            sent += len(chunk)
        await response.write_eof()


MAX_URI_BYTES = 16_384  # "414 ... URI exceeds 16,384 bytes"; 431 when URI + headers do (Status Codes v67)


def _oversized(request: web.Request) -> web.Response | None:
    uri = len(request.raw_path.encode())
    if uri > MAX_URI_BYTES:
        return web.Response(status=414, text="URI Too Long")
    headers = sum(len(k) + len(v) + 4 for k, v in request.raw_headers)
    if uri + headers > MAX_URI_BYTES:
        return web.Response(status=431, text="Request Header Fields Too Large")
    return None


def _token(request: web.Request) -> str:
    """``Authorization: Bearer <token>`` (REST) or the older ``OAuth <token>`` scheme."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() in ("bearer", "oauth") else ""


def _encoding(accept: str) -> str:
    offered = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return "gzip" if "gzip" in offered else "deflate" if "deflate" in offered else ""


def _project(rec: dict[str, Any], query: soql.Query, version: str) -> dict[str, Any]:
    """Selected fields in select order after ``attributes``; relationships nest with their own attributes."""
    obj = query.sobject
    out: dict[str, Any] = {
        "attributes": {"type": obj, "url": f"/services/data/v{version}/sobjects/{obj}/{rec.get('Id')}"}
    }
    for path in query.fields:
        if len(path) == 1:
            out[path[0]] = rec.get(path[0])
            continue
        relation, name = path[0], path[-1]
        target, key = RELATIONSHIPS.get(relation, ("User", relation + "Id"))
        nested = rec.get(relation)
        if nested is None:
            out[relation] = None
            continue
        holder = out.setdefault(
            relation,
            {
                "attributes": {
                    "type": target,
                    "url": f"/services/data/v{version}/sobjects/{target}/{rec.get(key)}",
                }
            },
        )
        holder[name] = rec.get(key) if name == "Id" else nested.get(name)
    return out
