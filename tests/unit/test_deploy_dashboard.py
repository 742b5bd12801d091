"""The Grafana dashboard cannot rot: every metric it queries is defined in forwarder/metrics.py (with the
sample suffix its type exposes), and every label it groups by is one of that metric's labels."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase

from forwarder import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "sf-forwarder.json"
_METRIC = re.compile(r"\bforwarder_[a-z0-9_]+")
_BY = re.compile(r"\bby\s*\(([^)]*)\)")
_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def _defined() -> dict[str, set[str]]:
    """Exposed sample name -> label names, for every metric object in forwarder.metrics."""
    samples: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        labels = set(value._labelnames) | {"le"}
        for family in value.describe():
            for suffix in _SUFFIXES[family.type]:
                samples[family.name + suffix] = labels
    return samples


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def _exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"] for p in _panels(dashboard) for t in p.get("targets", [])]


def test_dashboard_queries_metrics() -> None:
    assert len(_exprs()) >= 20


@pytest.mark.parametrize("expr", _exprs())
def test_every_queried_metric_and_label_exists(expr: str) -> None:
    defined = _defined()
    names = _METRIC.findall(expr)
    assert names, expr
    unknown = [n for n in names if n not in defined]
    assert not unknown, f"{unknown} not in forwarder/metrics.py (exposed: counters end _total)"
    labels = set().union(*(defined[n] for n in names))
    for group in _BY.findall(expr):
        for label in (x.strip() for x in group.split(",") if x.strip()):
            assert label in labels, f"{expr}: no metric here has the label {label!r}"


def test_core_views_are_on_the_dashboard() -> None:
    queried = {name for expr in _exprs() for name in _METRIC.findall(expr)}
    for needed in (
        "forwarder_events_ingested_total",
        "forwarder_sink_lag_events",
        "forwarder_sent_events_total",
        "forwarder_sink_errors_total",
        "forwarder_sink_retries_total",
        "forwarder_dead_letters_total",
        "forwarder_journal_bytes",
        "forwarder_salesforce_api_usage_ratio",
    ):
        assert needed in queried, needed


def test_panels_have_unique_ids_and_use_the_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = _panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    assert dashboard["templating"]["list"][0]["name"] == "datasource"
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


# --- the alerting rules shipped with the chart (and mounted by the compose stack) --------------------------

RULES = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "sf-forwarder" / "files" / "prometheus-rules.yaml"


def _alert_exprs() -> list[str]:
    import yaml

    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


# rules on Prometheus' own series (up{job=...}) have nothing of ours to check
@pytest.mark.parametrize("expr", [e for e in _alert_exprs() if "forwarder_" in e])
def test_alert_rules_query_only_defined_metrics(expr: str) -> None:
    test_every_queried_metric_and_label_exists(expr)


def test_alert_rules_cover_the_ways_data_waits_or_is_lost() -> None:
    queried = {name for expr in _alert_exprs() for name in _METRIC.findall(expr)}
    for needed in (
        "forwarder_stream_subscribed",
        "forwarder_sink_lag_events",
        "forwarder_dead_letters_total",
        "forwarder_journal_dropped_events_total",
        "forwarder_journal_blocked_seconds_total",
    ):
        assert needed in queried, needed
