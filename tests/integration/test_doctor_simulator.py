"""``sf-forwarder doctor`` against the simulated org and the receivers: a healthy setup passes, and each
failure class (credentials, reachability, API version, permissions, entitlement, clock, sinks, state,
config) fails its own line with a fix hint, never printing a secret."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from forwarder import config as config_module
from forwarder.doctor import Check, run_checks
from forwarder.testing.receivers.datadog import DatadogReceiver
from forwarder.testing.receivers.hec import HecReceiver
from forwarder.testing.simulator import Simulator

HEC_TOKEN = "hec-token-3f1d9a0b7c2e4d5f"
DD_KEY = "dd-key-8a7b6c5d4e3f2a1b"
CHANNELS = ["/event/LoginEventStream", "/event/LogoutEventStream"]


@dataclass
class Setup:
    org: Simulator
    hec: HecReceiver
    datadog: DatadogReceiver
    tmp: Path

    def document(self, **overrides: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "salesforce": {
                "login_url": self.org.base_url,
                "auth": {
                    "type": "client_credentials",
                    "client_id": self.org.client_id,
                    "client_secret": self.org.client_secret,
                },
            },
            "sources": {"streaming": {"channels": CHANNELS}},
            "sinks": [
                {"name": "splunk", "type": "splunk_hec", "url": self.hec.url, "token": HEC_TOKEN},
                {"name": "datadog", "type": "datadog", "url": self.datadog.intake_url, "api_key": DD_KEY},
                {"name": "archive", "type": "file", "path": str(self.tmp / "state" / "events.jsonl")},
            ],
            "state": {"path": str(self.tmp / "state" / "state.db"), "max_bytes": "1MiB"},
        }
        doc.update(overrides)
        return doc

    async def checks(self, **overrides: Any) -> dict[str, Check]:
        config = config_module.parse(self.document(**overrides), "test.yaml")
        return {c.name: c for c in await run_checks(config)}


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    async with (
        Simulator(seed=3, activities=20) as org,
        HecReceiver(tokens={HEC_TOKEN}) as hec,
        DatadogReceiver(api_keys={DD_KEY}) as datadog,
    ):
        yield Setup(org, hec, datadog, tmp_path)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _statuses(checks: dict[str, Check]) -> dict[str, str]:
    return {name: c.status for name, c in checks.items()}


async def test_healthy_setup_passes_every_check(setup: Setup) -> None:
    checks = await setup.checks()
    assert _statuses(checks) == {
        "rules": "skip",
        "state": "pass",
        "salesforce.login": "pass",
        "salesforce.api_version": "pass",
        "clock": "pass",
        "salesforce.streaming /event/LoginEventStream": "pass",
        "salesforce.streaming /event/LogoutEventStream": "pass",
        "salesforce.EventLogFile": "pass",
        "salesforce.SetupAuditTrail": "pass",
        "salesforce.LoginHistory": "skip",
        "sink splunk": "pass",
        "sink datadog": "pass",
        "sink archive": "pass",
    }
    assert "daily API usage" in checks["salesforce.EventLogFile"].detail
    assert setup.org.cometd.client_count == 0  # the probe's CometD client disconnected


async def test_wrong_credentials_fail_login_and_skip_the_org_checks(setup: Setup) -> None:
    doc = setup.document()
    doc["salesforce"]["auth"]["client_secret"] = "not-the-secret-0000"
    config = config_module.parse(doc, "test.yaml")
    checks = {c.name: c for c in await run_checks(config)}
    login = checks["salesforce.login"]
    assert login.status == "fail"
    assert "invalid_client" in login.detail
    assert "client_secret" in login.hint
    for name in ("salesforce.api_version", "salesforce.EventLogFile", "salesforce.SetupAuditTrail"):
        assert checks[name].status == "skip", name
    assert checks["sink splunk"].status == "pass"  # sinks are checked all the same


async def test_unreachable_login_url_names_reachability(setup: Setup) -> None:
    salesforce = {**setup.document()["salesforce"], "login_url": f"http://127.0.0.1:{_closed_port()}"}
    checks = await setup.checks(salesforce=salesforce)
    assert checks["salesforce.login"].status == "fail"
    assert "unreachable" in checks["salesforce.login"].detail
    assert "reachable" in checks["salesforce.login"].hint


async def test_unsupported_api_version_fails_with_the_newest_offered(setup: Setup) -> None:
    salesforce = {**setup.document()["salesforce"], "api_version": "99.0"}
    checks = await setup.checks(salesforce=salesforce)
    version = checks["salesforce.api_version"]
    assert version.status == "fail"
    assert "99.0 is not offered" in version.detail
    assert "67.0" in version.hint


async def test_missing_permissions_fail_each_object_and_channel(setup: Setup) -> None:
    setup.org.faults.deny(
        objects=["EventLogFile", "SetupAuditTrail"], channels=["/event/LoginEventStream"]
    )
    checks = await setup.checks()
    elf, sat = checks["salesforce.EventLogFile"], checks["salesforce.SetupAuditTrail"]
    assert (elf.status, sat.status) == ("fail", "fail")
    assert "INVALID_TYPE" in elf.detail
    assert "View Event Log Files" in elf.hint
    assert "View Setup and Configuration" in sat.hint
    login_stream = checks["salesforce.streaming /event/LoginEventStream"]
    assert login_stream.status == "fail"
    assert "403::Restricted channel" in login_stream.detail
    assert "Event Manager" in login_stream.hint
    assert checks["salesforce.streaming /event/LogoutEventStream"].status == "pass"


async def test_org_without_hourly_logs_is_told_to_read_daily_files(setup: Setup) -> None:
    setup.org.faults.set_hourly_entitlement(False)
    checks = await setup.checks()
    assert checks["salesforce.EventLogFile"].status == "fail"
    assert "interval: Daily" in checks["salesforce.EventLogFile"].hint
    sources = {"streaming": {"channels": CHANNELS}, "eventlogfile": {"interval": "Daily"}}
    assert (await setup.checks(sources=sources))["salesforce.EventLogFile"].status == "pass"


@pytest.mark.parametrize(("skew", "status"), [(120.0, "fail"), (-120.0, "fail"), (12.0, "warn")])
async def test_clock_skew_against_salesforce_date_header(setup: Setup, skew: float, status: str) -> None:
    setup.org.faults.clock_skew = skew
    clock = (await setup.checks())["clock"]
    assert clock.status == status
    assert ("behind" if skew > 0 else "ahead of") in clock.detail
    assert "NTP" in clock.hint


async def test_rate_limited_org_fails_the_queries(setup: Setup) -> None:
    setup.org.faults.rate_limited = True
    checks = await setup.checks()
    assert checks["salesforce.SetupAuditTrail"].status == "fail"
    assert "rate limit" in checks["salesforce.SetupAuditTrail"].detail


async def test_unreachable_and_refusing_sinks_fail_their_own_lines(setup: Setup) -> None:
    doc = setup.document()
    doc["sinks"][0]["url"] = f"http://127.0.0.1:{_closed_port()}"
    doc["sinks"][1]["api_key"] = "wrong-key-000000"
    doc["sinks"].append({"name": "siem", "type": "syslog", "address": f"tcp://127.0.0.1:{_closed_port()}"})
    checks = {c.name: c for c in await run_checks(config_module.parse(doc, "t.yaml"))}
    assert checks["sink splunk"].status == "fail"
    assert "HEC" in checks["sink splunk"].hint
    assert checks["sink datadog"].status == "fail"
    assert "api_key" in checks["sink datadog"].hint
    assert checks["sink siem"].status == "fail"
    assert "listens" in checks["sink siem"].hint
    assert checks["sink archive"].status == "pass"


async def test_unhealthy_hec_fails(setup: Setup) -> None:
    setup.hec.healthy = False
    assert (await setup.checks())["sink splunk"].status == "fail"


async def test_state_under_a_file_is_not_writable(setup: Setup) -> None:
    blocker = setup.tmp / "blocker"
    blocker.write_text("x")
    checks = await setup.checks(state={"path": str(blocker / "state.db")})
    assert checks["state"].status == "fail"
    assert "volume" in checks["state"].hint


async def test_journal_cap_beyond_free_space_warns(setup: Setup) -> None:
    checks = await setup.checks(state={"path": str(setup.tmp / "s" / "state.db"), "max_bytes": "900000GiB"})
    assert checks["state"].status == "warn"
    assert "will be created" in checks["state"].detail


# --- the command itself, as a real process ---------------------------------------------------------------


async def _doctor(config_file: Path, *extra: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "forwarder", "doctor", "-c", str(config_file), *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(90):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _write(setup: Setup, doc: dict[str, Any], name: str = "config.yaml") -> Path:
    path = setup.tmp / name
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


async def test_command_exits_0_and_prints_one_line_per_check(setup: Setup) -> None:
    secret_file = setup.tmp / "client_secret"
    secret_file.write_text(setup.org.client_secret + "\n")
    doc = setup.document()
    doc["salesforce"]["auth"] = {
        "type": "client_credentials",
        "client_id": setup.org.client_id,
        "client_secret_file": str(secret_file),
    }
    code, out, err = await _doctor(_write(setup, doc))
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0].startswith("sf-forwarder doctor: ")
    assert any(line.split()[:2] == ["PASS", "salesforce.login"] for line in lines)
    assert lines[-1].endswith(" - OK")
    for secret in (setup.org.client_secret, HEC_TOKEN, DD_KEY):
        assert secret not in out + err


async def test_command_exits_1_with_hints_and_never_prints_secrets(setup: Setup) -> None:
    setup.org.faults.deny(objects=["EventLogFile"])
    doc = setup.document()
    wrong_secret = "wrong-client-secret-6d2c"
    doc["salesforce"]["auth"]["client_secret"] = wrong_secret
    doc["sinks"][1]["api_key"] = "wrong-datadog-key-77ab"
    code, out, err = await _doctor(_write(setup, doc))
    assert code == 1, out + err
    assert "FAIL  salesforce.login" in out
    assert "fix: " in out
    assert out.splitlines()[-1].endswith(" - FAILED")
    for secret in (wrong_secret, "wrong-datadog-key-77ab", HEC_TOKEN, setup.org.client_secret):
        assert secret not in out + err


async def test_command_json_output_and_invalid_config(setup: Setup) -> None:
    code, out, _ = await _doctor(_write(setup, setup.document()), "--json")
    assert code == 0
    report = yaml.safe_load(out)  # JSON is YAML
    assert report["ok"] is True
    assert {c["status"] for c in report["checks"]} <= {"pass", "skip"}
    bad = setup.document()
    bad["sinks"][0]["token"] = None
    code, out, _ = await _doctor(_write(setup, bad, "bad.yaml"))
    assert code == 1
    assert "FAIL  config" in out
    assert "sinks[0].token" in out
    assert "salesforce.login" not in out  # nothing else runs on an invalid config


async def test_simulator_permission_and_clock_faults_over_http(setup: Setup) -> None:
    import aiohttp

    switches = {"missing_permissions": {"objects": ["SetupAuditTrail"], "channels": CHANNELS[:1]}, "clock_skew": 90}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{setup.org.base_url}/_sim/faults", json=switches) as resp:
            state = await resp.json()
        assert state["missing_permissions"] == {"objects": ["SetupAuditTrail"], "channels": CHANNELS[:1]}
        checks = await setup.checks()
        assert checks["salesforce.SetupAuditTrail"].status == "fail"
        assert checks["clock"].status == "fail"
        async with http.post(f"{setup.org.base_url}/_sim/faults", json={"clear": True}) as resp:
            assert (await resp.json())["clock_skew"] == 0
    assert setup.org.cometd.denied_channels == set()  # cleared in the CometD server too
    assert {c.status for c in (await setup.checks()).values()} <= {"pass", "skip"}
