"""Response helpers with Salesforce's exact JSON content type and error-array shape (facts D2)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

JSON_TYPE = "application/json;charset=UTF-8"


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, headers={"Content-Type": JSON_TYPE, **(headers or {})}
    )


def rest_error(status: int, error_code: str, message: str) -> web.Response:
    """REST errors are a JSON array of ``{"message", "errorCode"}`` (Status Codes and Error Responses v67)."""
    return json_response([{"message": message, "errorCode": error_code}], status=status)


def malformed_response(kind: str) -> web.Response:
    """A 200 whose body is not what the endpoint promises (a proxy's HTML page, nothing, or ``[]``)."""
    if kind == "html":
        return web.Response(text="<html><body><h1>Maintenance</h1></body></html>", content_type="text/html")
    if kind == "empty":
        return web.Response(body=b"", headers={"Content-Type": JSON_TYPE})
    return web.Response(body=b"[]", headers={"Content-Type": JSON_TYPE})
