"""/healthz, /readyz and /metrics of a running forwarder: ready once Salesforce auth works, metrics count
what flowed, and no secret appears in them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from prometheus_client import REGISTRY

from forwarder import config
from forwarder.app import Forwarder
from forwarder.testing.simulator import Simulator


async def test_ready_after_auth_and_metrics_show_flow(tmp_path: Path) -> None:
    async with Simulator(seed=3, activities=40) as org:
        cfg = config.parse(
            {
                "salesforce": {
                    "login_url": org.base_url,
                    "auth": {
                        "type": "client_credentials",
                        "client_id": org.client_id,
                        "client_secret": org.client_secret,
                    },
                },
                "sources": {
                    "streaming": {"channels": ["/event/LoginEventStream"], "replay": "earliest"},
                    "eventlogfile": {"enabled": False},
                    "setupaudittrail": {"enabled": False},
                },
                "sinks": [
                    {"name": "archive", "type": "file", "path": str(tmp_path / "e.jsonl")},
                    # Nobody listens here: the sink is shown unhealthy, yet the forwarder stays ready.
                    {"name": "splunk", "type": "splunk_hec", "url": "http://127.0.0.1:9", "token": "t"},
                ],
                "state": {"path": str(tmp_path / "state.db")},
            },
            "test.yaml",
        )
        # Metrics are process-wide: earlier tests may have counted deliveries to a sink of the same name.
        before = REGISTRY.get_sample_value("forwarder_sent_events_total", {"sink": "archive"}) or 0.0
        forwarder = Forwarder(cfg, listen="127.0.0.1:0")
        task = asyncio.create_task(forwarder.run())
        try:
            async with asyncio.timeout(30):
                while forwarder.ops is None or not forwarder.health.ready or len(forwarder.health.sinks) < 2:  # noqa: ASYNC110 - readiness is polled, as a probe does
                    await asyncio.sleep(0.05)
            port = forwarder.ops.addresses[0][1]
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
                async with http.get("/healthz") as r:
                    assert r.status == 200
                async with http.get("/readyz") as r:
                    body = await r.json()
                    assert r.status == 200
                    assert body["salesforce_authenticated"] is True
                    assert body["sinks"]["archive"] == "ok"
                    assert body["sinks"]["splunk"] == "RetryableError"
                expected = len(org.stream_events("/event/LoginEventStream"))
                async with asyncio.timeout(30):
                    while True:
                        async with http.get("/metrics") as r:
                            text = await r.text()
                        if f'forwarder_sent_events_total{{sink="archive"}} {before + expected}' in text:
                            break
                        await asyncio.sleep(0.1)
                assert org.client_secret not in text
        finally:
            forwarder.stop()
            await task
        async with aiohttp.ClientSession() as http:
            try:
                await http.get(f"http://127.0.0.1:{port}/healthz")
                raise AssertionError("the ops server still answers after stop")
            except aiohttp.ClientConnectionError:
                pass
