"""The operations endpoint: ``/metrics`` (Prometheus), ``/healthz`` (alive) and ``/readyz`` (ready).

Ready means the journal is open and Salesforce authentication worked: sinks that are down do not make the
forwarder unready, because the journal spools for them (that is what it is for); their state is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


@dataclass
class Health:
    """Readiness facts, set by the components that know them."""

    journal_open: bool = False
    salesforce_authenticated: bool = False
    sinks: dict[str, str] = field(default_factory=dict)  # sink name -> "ok" | short error class

    @property
    def ready(self) -> bool:
        return self.journal_open and self.salesforce_authenticated


def make_app(health: Health) -> web.Application:
    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(_: web.Request) -> web.Response:
        body = {
            "ready": health.ready,
            "journal_open": health.journal_open,
            "salesforce_authenticated": health.salesforce_authenticated,
            "sinks": health.sinks,
        }
        return web.json_response(body, status=200 if health.ready else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def start(health: Health, listen: str) -> web.AppRunner:
    """Serve on ``host:port`` (port 0 picks a free one); the caller cleans the runner up."""
    host, _, port = listen.rpartition(":")
    runner = web.AppRunner(make_app(health), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host.strip("[]"), int(port)).start()
    return runner
