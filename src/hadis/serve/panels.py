"""The operator's panels, defined once: the live dashboard evaluates them over the server's
own metric registry, and the Grafana board (deploy/grafana/hadis.json) carries the same
queries as PromQL, so both show the same numbers from the same series.

A query here is one of four shapes (all the panels need, all PromQL):
  value      sum by (L) (M{...})
  rate       sum by (L) (rate(M{...}[W]))
  ratio      sum(rate(A{...}[W])) / sum(rate(B{...}[W]))
  quantile   histogram_quantile(q, sum by (le) (rate(M_bucket[W])))
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

WINDOW_S = 60.0  # rate window, "[1m]" in PromQL

# One sample: (metric name, sorted label pairs) -> value.
SampleKey = tuple[str, tuple[tuple[str, str], ...]]
Samples = dict[SampleKey, float]


@dataclass(frozen=True)
class Query:
    kind: str  # value, rate, ratio, quantile
    metric: str
    by: str | None = None  # one line per value of this label (None: one line)
    match: Mapping[str, str] = field(default_factory=dict)  # label -> regex (full match)
    over: Query | None = None  # ratio: the denominator
    q: float = 0.99  # quantile

    def promql(self) -> str:
        sel = self.metric + _matchers(self.match)
        by = f" by ({self.by})" if self.by else ""
        if self.kind == "value":
            return f"sum{by} ({sel})"
        if self.kind == "rate":
            return f"sum{by} (rate({sel}[1m]))"
        if self.kind == "ratio":
            assert self.over is not None
            return f"{Query('rate', self.metric, match=self.match).promql()} / " + (
                self.over.promql()
            )
        if self.kind == "quantile":
            return (
                f"histogram_quantile({self.q:g}, sum by (le) "
                f"(rate({self.metric}_bucket{_matchers(self.match)}[1m])))"
            )
        raise ValueError(self.kind)

    def evaluate(self, now: Samples, then: Samples, dt: float) -> dict[str, float]:
        """Line name -> value, from two registry samplings dt real seconds apart."""
        if self.kind == "value":
            return _sum_by(self, now)
        if self.kind == "rate":
            return _rates(self, now, then, dt)
        if self.kind == "ratio":
            assert self.over is not None
            num = sum(_rates(Query("rate", self.metric, match=self.match), now, then, dt).values())
            den = sum(self.over.evaluate(now, then, dt).values())
            return {"": num / den if den > 0 else 0.0}
        if self.kind == "quantile":
            return {"": _histogram_quantile(self, now, then, dt)}
        raise ValueError(self.kind)


@dataclass(frozen=True)
class Panel:
    id: str
    title: str
    unit: str
    query: Query
    stacked: bool = False


PANELS: tuple[Panel, ...] = (
    Panel(
        "arrivals",
        "Arrivals (queries per real second)",
        "q/s",
        Query("rate", "hadis_query_arrivals_total"),
    ),
    Panel(
        "demand",
        "Planner's demand estimate (queries per profile second)",
        "q/s",
        Query("value", "hadis_demand_qps"),
    ),
    Panel(
        "capacity",
        "Plan capacity per model (queries/s)",
        "q/s",
        Query("value", "hadis_plan_capacity_qps", by="model"),
    ),
    Panel("gpus", "GPUs per model", "GPUs", Query("value", "hadis_gpus", by="model"), True),
    Panel(
        "workers", "Workers by state", "workers", Query("value", "hadis_workers", by="state"), True
    ),
    Panel(
        "queues",
        "Queued queries per model",
        "queries",
        Query("value", "hadis_queue_length", by="model"),
    ),
    Panel(
        "outcomes",
        "Requests by outcome (requests/s)",
        "req/s",
        Query("rate", "hadis_requests_total", by="outcome"),
    ),
    Panel(
        "violations",
        "SLO violation ratio (late or dropped queries)",
        "ratio",
        Query(
            "ratio",
            "hadis_queries_total",
            match={"outcome": "late|dropped"},
            over=Query("rate", "hadis_queries_total"),
        ),
    ),
    Panel(
        "paths",
        "Queries that ended, by path (queries/s)",
        "q/s",
        Query("rate", "hadis_queries_total", by="path"),
    ),
    Panel(
        "served_quality",
        "Served quality, last minute (the profile's metric at the realised path mix)",
        "",
        Query("value", "hadis_served_quality"),
    ),
    Panel(
        "quality",
        "Predicted quality of the plan in force",
        "",
        Query("value", "hadis_plan_quality"),
    ),
    Panel(
        "latency",
        "Request latency p99 (seconds)",
        "s",
        Query("quantile", "hadis_request_latency_seconds"),
    ),
)

# HTTP status per request outcome, for the dashboard's legend.
OUTCOME_STATUS = {
    "ok": 200,
    "invalid": 400,
    "disconnected": 499,
    "rejected": 429,
    "not_ready": 503,
    "shutdown": 503,
    "error": 500,
    "timeout": 504,
}


GRAFANA_UNITS = {"q/s": "reqps", "req/s": "reqps", "s": "s", "ratio": "percentunit"}


def _matchers(match: Mapping[str, str]) -> str:
    if not match:
        return ""
    return "{" + ",".join(f'{k}=~"{v}"' for k, v in sorted(match.items())) + "}"


def _selected(query: Query, samples: Samples, name: str) -> list[tuple[dict[str, str], float]]:
    out = []
    for (metric, labels), value in samples.items():
        if metric != name:
            continue
        lab = dict(labels)
        if all(re.fullmatch(rx, lab.get(k, "")) for k, rx in query.match.items()):
            out.append((lab, value))
    return out


def _sum_by(query: Query, samples: Samples, name: str | None = None) -> dict[str, float]:
    out: dict[str, float] = {}
    for lab, value in _selected(query, samples, name or query.metric):
        key = lab.get(query.by, "") if query.by else ""
        out[key] = out.get(key, 0.0) + value
    return out


def _rates(query: Query, now: Samples, then: Samples, dt: float) -> dict[str, float]:
    """Per-second increase of each counter series over dt, summed by the query's label (a
    counter that went down was reset: its whole current value counts)."""
    out: dict[str, float] = {}
    if dt <= 0:
        return out
    before = dict(_keyed(query, then, query.metric))
    for key, (lab, value) in _keyed(query, now, query.metric):
        prev = before.get(key, (lab, 0.0))[1]
        inc = value - prev if value >= prev else value
        line = lab.get(query.by, "") if query.by else ""
        out[line] = out.get(line, 0.0) + inc / dt
    return out


def _keyed(query: Query, samples: Samples, name: str):
    return [
        (tuple(sorted(lab.items())), (lab, value)) for lab, value in _selected(query, samples, name)
    ]


def _histogram_quantile(query: Query, now: Samples, then: Samples, dt: float) -> float:
    """PromQL's histogram_quantile over the buckets' rates (linear within a bucket; NaN
    with no observations)."""
    bucket = Query("rate", query.metric + "_bucket", by="le", match=query.match)
    rates = _rates(bucket, now, then, dt)
    bounds = sorted(((float(le), r) for le, r in rates.items()), key=lambda x: x[0])
    if not bounds or bounds[-1][1] <= 0:
        return math.nan
    rank = query.q * bounds[-1][1]
    lo_bound, lo_count = 0.0, 0.0
    for upper, count in bounds:
        if count >= rank:
            if math.isinf(upper):
                return lo_bound
            if count == lo_count:
                return upper
            return lo_bound + (upper - lo_bound) * (rank - lo_count) / (count - lo_count)
        lo_bound, lo_count = upper, count
    return math.nan


def sample(registry: Any) -> Samples:
    """Every sample of a prometheus_client registry."""
    out: Samples = {}
    for family in registry.collect():
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
    return out


def grafana_board() -> dict[str, Any]:
    """The Grafana dashboard (JSON model) with one time-series panel per PANELS entry."""
    panels = []
    for i, p in enumerate(PANELS):
        legend = f"{{{{{p.query.by}}}}}" if p.query.by else p.title
        panels.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": p.title,
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "fieldConfig": {
                    "defaults": {
                        "unit": {
                            "q/s": "reqps",
                            "req/s": "reqps",
                            "s": "s",
                            "ratio": "percentunit",
                        }.get(p.unit, "short"),
                        "custom": {"stacking": {"mode": "normal" if p.stacked else "none"}},
                    },
                    "overrides": [],
                },
                "targets": [
                    {
                        "refId": "A",
                        "expr": p.query.promql(),
                        "legendFormat": legend,
                        "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    }
                ],
            }
        )
    return {
        "title": "hadis",
        "uid": "hadis-serving",
        "description": "HADIS serving: the panels of hadis serve's /dashboard over Prometheus "
        "(generated by `python -m hadis.serve.panels`; do not edit by hand).",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "10s",
        "time": {"from": "now-30m", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Prometheus",
                }
            ]
        },
        "panels": panels,
    }


if __name__ == "__main__":
    print(json.dumps(grafana_board(), indent=1))
