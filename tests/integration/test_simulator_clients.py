"""Independent clients work against the simulator unmodified: simple-salesforce, the CLI, a Bayeux exchange."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import sys
from typing import Any

import aiohttp
import requests
from simple_salesforce import Salesforce

from forwarder.testing.simulator import Simulator


async def _token(org: Simulator, ssl: Any = None) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": org.client_id,
        "client_secret": org.client_secret,
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{org.base_url}/services/oauth2/token", data=form, ssl=ssl) as resp,
    ):
        return str((await resp.json())["access_token"])


def _simple_salesforce(org: Simulator, token: str) -> Salesforce:
    session = requests.Session()
    session.verify = str(org.cert_path)  # the simulator's self-signed certificate
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment overrides ``verify``
    return Salesforce(instance_url=org.base_url, session_id=token, session=session, version="62.0")


async def test_simple_salesforce_query_all_walks_every_page() -> None:
    async with Simulator(seed=6, tls=True, page_size=7) as org:
        context = ssl.create_default_context(cafile=str(org.cert_path))
        token = await _token(org, context)
        sf = _simple_salesforce(org, token)
        result = await asyncio.to_thread(sf.query_all, "SELECT Id, EventType, LogFile FROM EventLogFile")
        assert result["totalSize"] == len(org.log_files) > 21  # several pages of 7
        assert result["done"] is True
        assert sorted(r["Id"] for r in result["records"]) == sorted(org.log_files)
        logins = await asyncio.to_thread(sf.query_all, "SELECT EventIdentifier, Username FROM LoginEvent")
        assert logins["totalSize"] == len(org.stream_events("/event/LoginEventStream"))
        assert sf.api_usage["api-usage"].used > 3  # it parsed our Sforce-Limit-Info header


async def _read_banner(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    base_url = ""
    async with asyncio.timeout(60):
        while True:
            line = (await proc.stdout.readline()).decode()
            assert line, "simulator exited before printing its banner"
            if "listening on" in line:
                base_url = line.split("listening on", 1)[1].split()[0]
            if line.startswith("Press Ctrl-C"):
                return base_url


async def test_cli_prints_credentials_serves_and_stops_on_sigint() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "forwarder.testing.simulator.cli",
        "--port",
        "0",
        "--seed",
        "3",
        "--scenario",
        "attacks",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        base_url = await _read_banner(proc)
        async with aiohttp.ClientSession() as http, http.get(f"{base_url}/services/data/") as resp:
            assert resp.status == 200
            assert (await resp.json())[-1]["version"] == "67.0"
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_generated_stream_events_reach_a_bayeux_subscriber() -> None:
    async with Simulator(seed=8, connect_timeout=0.5) as org:
        token = await _token(org)
        jar = aiohttp.CookieJar(unsafe=True)  # keep BAYEUX_BROWSER from a 127.0.0.1 server
        headers = {"Authorization": f"OAuth {token}"}
        url = f"{org.base_url}/cometd/62.0"
        channel = "/event/LoginEventStream"
        async with aiohttp.ClientSession(cookie_jar=jar, headers=headers) as http:
            async with http.post(
                url,
                json=[
                    {
                        "channel": "/meta/handshake",
                        "version": "1.0",
                        "supportedConnectionTypes": ["long-polling"],
                    }
                ],
            ) as resp:
                client_id = (await resp.json())[0]["clientId"]
            sub = {
                "channel": "/meta/subscribe",
                "subscription": channel,
                "clientId": client_id,
                "ext": {"replay": {channel: -2}},
            }
            async with http.post(url, json=[sub]) as resp:
                assert (await resp.json())[0]["successful"] is True
            payloads: list[dict[str, Any]] = []
            want = [a.payload for a in org.stream_events(channel)]
            async with asyncio.timeout(30):
                while len(payloads) < len(want):
                    connect = {
                        "channel": "/meta/connect",
                        "connectionType": "long-polling",
                        "clientId": client_id,
                    }
                    async with http.post(url, json=[connect]) as resp:
                        payloads += [
                            m["data"]["payload"] for m in await resp.json() if m["channel"] == channel
                        ]
        assert payloads == want


async def test_generated_activities_stream_at_once_and_reach_log_files_when_filed() -> None:
    async with Simulator(seed=9) as org:
        channel_counts = {
            c: len(org.bus.after(c, org.bus.earliest_cursor(c), 100_000))
            for c in ("/event/LoginEventStream", "/event/LightningUriEventStream")
        }
        files_before = set(org.log_files)
        made = org.generate(40)
        streamed = [a for a in made if a.channel in channel_counts]
        after = {c: len(org.bus.after(c, org.bus.earliest_cursor(c), 100_000)) for c in channel_counts}
        assert sum(after.values()) - sum(channel_counts.values()) == len(streamed)
        assert set(org.log_files) == files_before
        filed = org.file_logs()
        rows = {tuple(r) for f in filed for r in f.source.rows()}
        want = {tuple(row.values()) for a in made for row in a.elf.values()}
        assert rows == want
        assert all(f.interval == "Hourly" and f.created_date <= org.clock() for f in filed)
        assert org.file_logs() == []  # nothing pending twice


async def test_live_mode_keeps_publishing() -> None:
    async with Simulator(seed=9, live_interval=0.01) as org:
        published = 0
        enough = asyncio.Event()

        def count() -> None:
            nonlocal published
            published += 1
            if published >= 5:
                enough.set()

        org.bus.add_listener(count)
        async with asyncio.timeout(10):
            await enough.wait()
