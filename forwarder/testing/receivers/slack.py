"""A Slack incoming-webhook stand-in: the secret path is the credential (404 ``no_service`` otherwise), the
payload shape and Block Kit limits are checked (400 ``invalid_payload`` / ``no_text`` / ``invalid_blocks``),
``200 ok`` on success, and it can answer Slack's other errors (410 ``channel_is_archived``, 403
``action_prohibited``) or rate-limit at 1 message/s with ``429 Retry-After``. Facts: reference §6.2,
api.slack.com/reference/block-kit/blocks."""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from forwarder.testing.receivers import Fault, HttpReceiver

DEFAULT_PATH = "/services/T0TEST0000/B0TEST0000/xTestWebhookSecret0000000"
MAX_BLOCKS = 50
MAX_TEXT = 40_000
_LIMITS = {"header": 150, "section": 3000, "field": 2000, "block_id": 255}
_KNOWN = {"header", "section", "context", "divider", "image", "actions", "rich_text", "markdown"}


def slack_fault(status: int, code: str, retry_after: float | None = None, **kw: Any) -> Fault:
    """A scripted Slack answer, e.g. ``slack_fault(410, "channel_is_archived")``."""
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    return Fault(status=status, body=code.encode(), headers=headers, **kw)


def block_problem(block: Any) -> str | None:
    """Why Slack would refuse this block (``invalid_blocks``), or None."""
    if not isinstance(block, dict) or block.get("type") not in _KNOWN:
        return "unknown block type"
    if len(str(block.get("block_id", ""))) > _LIMITS["block_id"]:
        return "block_id too long"
    text = block.get("text")
    if block["type"] == "header":
        if not isinstance(text, dict) or text.get("type") != "plain_text":
            return "header needs plain_text"
        return "header text too long" if len(str(text.get("text", ""))) > _LIMITS["header"] else None
    if block["type"] == "section":
        return _section_problem(block)
    if block["type"] == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
            return "context needs 1-10 elements"
    return None


def _section_problem(block: dict[str, Any]) -> str | None:
    text, fields = block.get("text"), block.get("fields")
    if text is None and not fields:
        return "section needs text or fields"
    if isinstance(text, dict) and len(str(text.get("text", ""))) > _LIMITS["section"]:
        return "section text too long"
    if fields is not None:
        if not isinstance(fields, list) or len(fields) > 10:
            return "section takes at most 10 fields"
        if any(len(str(f.get("text", ""))) > _LIMITS["field"] for f in fields if isinstance(f, dict)):
            return "field text too long"
    return None


class SlackReceiver(HttpReceiver):
    """One workspace's incoming webhook at ``webhook_url``."""

    def __init__(self, *, path: str = DEFAULT_PATH, min_interval: float = 0.0, **kw: Any) -> None:
        super().__init__(**kw)
        self.path = path
        self.min_interval = min_interval  # > 0: 429 for a message sooner than this after the last one
        self.state: str | None = None  # "revoked" (404 no_service), "archived" (410 channel_is_archived)
        self.problems: list[str] = []  # why payloads were refused, in order
        self._last: float | None = None

    @property
    def webhook_url(self) -> str:
        """The secret URL for ``WebhookConfig.url``."""
        return f"{self.url}{self.path}"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/services/{rest:.*}", self._post)]

    def event_id(self, event: dict[str, Any]) -> str | None:
        for block in event.get("blocks") or []:
            block_id = block.get("block_id") if isinstance(block, dict) else None
            if isinstance(block_id, str) and block_id.startswith("alert:"):
                return block_id.removeprefix("alert:")
        return None

    def auth_error(self, request: web.Request) -> web.Response | None:
        if request.path != self.path or self.state == "revoked":
            return _text(404, "no_service")
        if self.state == "archived":
            return _text(410, "channel_is_archived")
        return None

    async def _post(self, request: web.Request) -> web.StreamResponse:
        return await self.intake(request, self._respond)

    async def _respond(self, request: web.Request, body: bytes | None) -> web.StreamResponse:
        now = time.monotonic()
        if self.min_interval and self._last is not None and now - self._last < self.min_interval:
            return web.Response(status=429, text="rate_limited", headers={"Retry-After": "1"})
        self._last = now
        problem = self.payload_problem(body)
        if problem is not None:
            self.problems.append(problem)
            code = problem.split(":")[0]
            return _text(400, code)
        await self.accept([orjson.loads(body or b"")])
        return _text(200, "ok")

    def payload_problem(self, body: bytes | None) -> str | None:
        """``invalid_payload`` / ``no_text`` / ``invalid_blocks: <why>``, or None for a good message."""
        try:
            message = orjson.loads(body or b"")
        except orjson.JSONDecodeError:
            return "invalid_payload"
        if not isinstance(message, dict):
            return "invalid_payload"
        text, blocks = message.get("text"), message.get("blocks")
        if not text and not blocks:
            return "no_text"
        if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT):
            return "invalid_payload"
        if blocks is not None:
            if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
                return "invalid_blocks: at most 50 blocks"
            for block in blocks:
                if (why := block_problem(block)) is not None:
                    return f"invalid_blocks: {why}"
        return None


def _text(status: int, body: str) -> web.Response:
    return web.Response(status=status, text=body, content_type="text/html")
