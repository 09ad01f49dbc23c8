"""Metrics, the dashboard's data, the Grafana board and the alert rules agree."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families

from hadis.core.residency import Found
from hadis.profiles import load_profile
from hadis.serve import ServeConfig, build_app, panels
from hadis.serve.panels import Query
from tests.serve_helpers import running_server

ROOT = Path(__file__).resolve().parent.parent
BOARD = ROOT / "deploy" / "grafana" / "hadis.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
BOUNDED_LABELS = {
    "outcome": {"ok", "invalid", "disconnected", "rejected", "not_ready", "shutdown", "error",
                "timeout", "served", "late", "dropped"},
    "path": {"light", "direct-heavy", "escalated"},
    "state": {"busy", "idle", "switching", "restarting", "failed"},
    "reason": {"start", "period", "backlog", "workers"},
    "found": {f.value for f in Found},
}  # fmt: skip


def _app(**config):
    profile = load_profile("hadis-l40s")
    cfg = ServeConfig(workers=4, slo_s=60, time_scale=0.01, initial_demand_qps=1.0, **config)
    return build_app(
        profile, cfg, executor="instant", router="reference", discriminator="reference"
    ), profile


def _post(base: str, prompt: str = "a cat", **headers: str) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/images/generations", json={"prompt": prompt}, headers=headers, timeout=30
    )


# ---------------------------------------------------------------- the query language
def test_queries_render_as_promql() -> None:
    by_id = {p.id: p.query.promql() for p in panels.PANELS}
    assert by_id["outcomes"] == "sum by (outcome) (rate(hadis_requests_total[1m]))"
    assert by_id["gpus"] == "sum by (model) (hadis_gpus)"
    assert by_id["violations"] == (
        'sum (rate(hadis_queries_total{outcome=~"late|dropped"}[1m])) / '
        "sum (rate(hadis_queries_total[1m]))"
    )
    assert by_id["latency"] == (
        "histogram_quantile(0.99, sum by (le) (rate(hadis_request_latency_seconds_bucket[1m])))"
    )


def test_evaluation_matches_hand_arithmetic() -> None:
    reg = CollectorRegistry()
    c = Counter("x", "", ["outcome"], registry=reg)
    g = Gauge("g", "", ["model"], registry=reg)
    h = Histogram("lat_seconds", "", buckets=(1, 2, 4), registry=reg)
    c.labels("late").inc(2)
    c.labels("served").inc(8)
    then = panels.sample(reg)
    c.labels("late").inc(3)
    c.labels("served").inc(7)
    c.labels("dropped").inc(10)  # a series that appears between the samplings
    g.labels("a").set(2)
    g.labels("b").set(5)
    for v in (0.5, 1.5, 1.5, 3.0):
        h.observe(v)
    now = panels.sample(reg)
    rate = Query("rate", "x_total", by="outcome").evaluate(now, then, 10.0)
    assert rate == pytest.approx({"late": 0.3, "served": 0.7, "dropped": 1.0})
    ratio = Query(
        "ratio", "x_total", match={"outcome": "late|dropped"}, over=Query("rate", "x_total")
    ).evaluate(now, then, 10.0)
    assert ratio[""] == pytest.approx(13 / 20)
    assert Query("value", "g", by="model").evaluate(now, then, 10.0) == {"a": 2.0, "b": 5.0}
    assert Query("value", "g").evaluate(now, then, 10.0) == {"": 7.0}
    # 4 observations: cumulative 1 (<=1), 3 (<=2), 4 (<=4); p50 rank 2 lies in (1, 2]
    p50 = Query("quantile", "lat_seconds", q=0.5).evaluate(now, then, 10.0)[""]
    assert p50 == pytest.approx(1 + (2 - 1) * (2 - 1) / (3 - 1))
    assert math.isnan(Query("quantile", "lat_seconds").evaluate(then, then, 10.0)[""])
    # a counter that went down was reset: its whole value counts
    assert Query("rate", "x_total", by="outcome").evaluate(then, now, 10.0)["late"] == 0.2


# ---------------------------------------------------------------- Grafana and alerts
def test_the_grafana_board_in_the_repo_is_generated_from_the_panels() -> None:
    assert json.loads(BOARD.read_text()) == panels.grafana_board(), (
        "regenerate: python -m hadis.serve.panels > deploy/grafana/hadis.json"
    )
    exprs = [p["targets"][0]["expr"] for p in json.loads(BOARD.read_text())["panels"]]
    assert exprs == [p.query.promql() for p in panels.PANELS]


def _exposition(base: str) -> str:
    return httpx.get(f"{base}/metrics", timeout=10).text


@pytest.fixture(scope="module")
def server():
    app, profile = _app()
    with running_server(app) as base:
        for i in range(5):
            assert _post(base, f"prompt {i}").status_code == 200
        yield base, profile, app


def test_metric_names_and_labels_follow_prometheus_conventions(server) -> None:
    base, profile, _ = server
    families = list(text_string_to_metric_families(_exposition(base)))
    ours = [f for f in families if f.name.startswith("hadis_")]
    assert len(ours) >= 15
    models = {m.name for m in profile.models}
    for f in ours:
        assert re.fullmatch(r"hadis_[a-z0-9_]+", f.name), f.name
        for s in f.samples:
            if f.type == "counter" and not s.name.endswith("_created"):
                assert s.name.endswith("_total"), s.name
            if f.type == "histogram" and "batch_size" not in f.name:
                assert f.name.endswith("_seconds"), f.name  # the unit is in the name
            for label, value in s.labels.items():
                if label in BOUNDED_LABELS:
                    assert value in BOUNDED_LABELS[label], (s.name, label, value)
                elif label == "model":
                    assert value in models
                else:
                    # an _info metric describes the plan in force in its labels
                    assert label in {"le", "quantile"} or s.name.endswith("_info"), (s.name, label)


def test_every_alert_and_panel_reads_metrics_the_server_exports(server) -> None:
    base, _, _ = server
    exported = set()
    for f in text_string_to_metric_families(_exposition(base)):
        exported |= {s.name for s in f.samples}
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    assert {r["alert"] for r in rules} >= {
        "HadisSloViolations", "HadisRejectingRequests", "HadisWorkersFailed", "HadisPlanInfeasible"
    }  # fmt: skip
    exprs = [r["expr"] for r in rules] + [p.query.promql() for p in panels.PANELS]
    for expr in exprs:
        for name in re.findall(r"\b(hadis_[a-z0-9_]+)", expr):
            assert name in exported, (name, expr)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules_and_the_exposition(server) -> None:
    base, _, _ = server
    rules = subprocess.run(
        ["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr
    lint = subprocess.run(
        ["promtool", "check", "metrics"], input=_exposition(base), capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


# ---------------------------------------------------------------- the dashboard's data
def test_dashboard_values_are_the_queries_over_the_exported_metrics(server) -> None:
    from hadis.serve.dashboard import DashboardFeed

    base, _, app = server
    live = app.state.dashboard
    feed = DashboardFeed(live.service, live.metrics)  # not started: this test sets the clock
    feed.sample_once(1000.0)
    for i in range(6):
        assert _post(base, f"more {i}").status_code == 200
    after = feed.sample_once(1010.0)
    ok = after["values"]["outcomes"]["ok"]
    assert ok == pytest.approx(6 / 10)
    scraped = {
        s.labels["outcome"]: s.value
        for f in text_string_to_metric_families(_exposition(base))
        if f.name == "hadis_requests"
        for s in f.samples
        if s.name == "hadis_requests_total"
    }
    assert scraped["ok"] == 11  # 5 + 6: the same counter the dashboard's rate reads
    assert sum(after["values"]["gpus"].values()) == 4
    assert sum(after["values"]["workers"].values()) == 4


def test_dashboard_state_events_timeline_and_auth() -> None:
    app, _ = _app(api_keys=("k1",), gallery=3)
    auth = {"Authorization": "Bearer k1"}
    with running_server(app) as base:
        page = httpx.get(f"{base}/dashboard")
        assert page.status_code == 200 and "<svg" not in page.text  # the shell is open, empty
        assert "lineChart" in page.text and "http" not in page.text.split("<script>")[0].lower()
        assert httpx.get(f"{base}/dashboard/state").status_code == 401
        assert httpx.get(f"{base}/dashboard/gallery").status_code == 401
        assert _post(base, "a dog on a beach", **auth).status_code == 200
        state = httpx.get(f"{base}/dashboard/state", headers=auth).json()
        assert [p["id"] for p in state["panels"]] == [p.id for p in panels.PANELS]
        assert state["timeline"][0]["reason"] == "start"
        assert state["plan"]["pair"] and len(state["workers"]) == 4
        gallery = httpx.get(f"{base}/dashboard/gallery", headers=auth).json()
        assert gallery[-1]["prompt"] == "a dog on a beach" and gallery[-1]["path"]
        with httpx.stream("GET", f"{base}/dashboard/events", headers=auth, timeout=10) as res:
            assert res.headers["content-type"].startswith("text/event-stream")
            events = []
            for line in res.iter_lines():
                if line.startswith("data:"):
                    events.append(json.loads(line[5:]))
                if len(events) == 2:
                    break
        assert events[1]["seq"] > events[0]["seq"]
        assert set(events[0]["point"]["values"]) == {p.id for p in panels.PANELS}


def test_gallery_is_off_by_default() -> None:
    app, _ = _app()
    with running_server(app) as base:
        res = httpx.get(f"{base}/dashboard/gallery")
        assert res.status_code == 404 and res.json()["error"]["code"] == "gallery_off"


def test_served_quality_is_the_table_at_the_realised_path_mix() -> None:
    from hadis.engine import Query as EngineQuery
    from hadis.engine.quality import QualityTable
    from hadis.serve.prom import ServerMetrics

    profile = load_profile("hadis-l40s")
    table = QualityTable(profile)
    metrics = ServerMetrics(1.0, 60.0, tuple(m.name for m in profile.models), table)
    assert math.isnan(metrics.observe_served_quality())
    pair = profile.pairs[0]
    paths = ["light"] * 6 + ["direct-heavy"] * 2 + ["escalated"] * 2
    for i, path in enumerate(paths):
        q = EngineQuery(i, 0.0)
        q.pair, q.path, q.status, q.finish_s = pair, path, "served", 1.0
        metrics.on_query_done(q)
    dropped = EngineQuery(99, 0.0)
    dropped.pair, dropped.status, dropped.finish_s = pair, "dropped", 1.0
    metrics.on_query_done(dropped)  # a dropped query served nothing
    expected = table.group_quality(pair, 6, 2, 2)
    assert metrics.observe_served_quality() == pytest.approx(expected)
    late = EngineQuery(100, 0.0)
    late.pair, late.path, late.status, late.finish_s = pair, "light", "served", 61.0
    metrics.on_query_done(late)
    samples = panels.sample(metrics.registry)
    assert samples[("hadis_queries_total", (("outcome", "late"), ("path", "light")))] == 1
