"""Prometheus metrics of the live server, fed by engine events (seconds are real).

Names follow Prometheus conventions: counters end in `_total` (prometheus_client adds it),
units are in the name (`_seconds`, `_qps`), label values come from small fixed sets
(outcomes, paths, reasons, worker states, the profile's model names). The live dashboard
and the Grafana board read these same series (serve/panels.py).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from hadis.core.query import DIRECT, DROPPED, ESCALATED, LIGHT
from hadis.core.snapshot import WORKER_STATES
from hadis.engine import Query
from hadis.engine.quality import QualityTable
from hadis.planner import Plan
from hadis.serve.listener import ServiceListener

if TYPE_CHECKING:
    from hadis.serve.service import ServiceSnapshot

_LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    20,
    30,
    45,
    60,
    90,
    120,
    180,
)


SERVED_WINDOW_S = 60.0  # real seconds of served queries behind hadis_served_quality
PLAN_REASONS = ("start", "period", "backlog", "workers")


class ServerMetrics(ServiceListener):
    def __init__(
        self,
        time_scale: float,
        slo_s: float = float("inf"),
        models: tuple[str, ...] = (),
        quality: QualityTable | None = None,
    ) -> None:
        self.scale = time_scale
        self.quality_table = quality
        # served queries per (pair, path), in one-second buckets: O(1) per query, and the
        # gauge sums at most SERVED_WINDOW_S buckets (not every query) once a second
        self._served: deque[tuple[int, dict[tuple[tuple[str, ...], str], int]]] = deque()
        self.slo_s = slo_s  # profile seconds: a served query that took longer is "late"
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "hadis_requests", "HTTP image requests by outcome", ["outcome"], registry=r
        )
        self.request_latency = Histogram(
            "hadis_request_latency_seconds",
            "Request latency (real seconds)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queries = Counter(
            "hadis_queries",
            "Queries (images) that ended, by path and outcome (served, late, dropped)",
            ["path", "outcome"],
            registry=r,
        )
        self.arrivals = Counter("hadis_query_arrivals", "Queries (images) accepted", registry=r)
        self.demand = Gauge(
            "hadis_demand_qps",
            "The planner's demand estimate (queries per profile second)",
            registry=r,
        )
        self.capacity = Gauge(
            "hadis_plan_capacity_qps",
            "Queries per profile second the plan in force can serve, per model",
            ["model"],
            registry=r,
        )
        self.plan_quality = Gauge(
            "hadis_plan_quality",
            "The profile's predicted quality (e.g. FID) of the plan in force",
            registry=r,
        )
        self.served_quality = Gauge(
            "hadis_served_quality",
            "Quality (e.g. FID) of the queries served in the last minute: the profile's "
            "table at their realised pair and path mix (NaN when none)",
            registry=r,
        )
        self.served_quality.set(math.nan)
        self.plan_feasible = Gauge(
            "hadis_plan_feasible",
            "1 when the plan in force meets the SLO at the demand, else 0",
            registry=r,
        )
        self.plan_changes = Counter(
            "hadis_plan_changes",
            "Plans that changed the pair, fractions, GPUs or batch sizes, by reason",
            ["reason"],
            registry=r,
        )
        self.workers = Gauge("hadis_workers", "Workers by state", ["state"], registry=r)
        for state in WORKER_STATES:
            self.workers.labels(state).set(0)
        for reason in PLAN_REASONS:
            self.plan_changes.labels(reason)
        self.queue_wait = Histogram(
            "hadis_queue_wait_seconds",
            "Arrival to first batch start (real seconds)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.query_latency = Histogram(
            "hadis_query_latency_seconds",
            "Arrival to end per query (real seconds)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "hadis_batch_size",
            "Queries per batch",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 32),
            registry=r,
        )
        self.batch_latency = Histogram(
            "hadis_batch_latency_seconds",
            "Batch execution time (real seconds)",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.switch_latency = Histogram(
            "hadis_model_switch_seconds",
            "Time to load a model on a worker (real seconds)",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.switches = Counter(
            "hadis_model_switches",
            "Model switches by where the worker found the model's weights: active (same "
            "weights), device (kept beside the active one), host (host memory) or disk",
            ["model", "found"],
            registry=r,
        )
        self.queue_length = Gauge(
            "hadis_queue_length", "Queued queries per model", ["model"], registry=r
        )
        self.gpus = Gauge(
            "hadis_gpus", "Workers the current plan gives each model", ["model"], registry=r
        )
        self.plans = Counter("hadis_plans", "Plans applied", registry=r)
        self.config = Info("hadis_config", "The configuration in force", registry=r)
        # every model's series exists from the start (0), so queries and alerts see them
        for model in models:
            for gauge in (self.queue_length, self.gpus, self.capacity):
                gauge.labels(model).set(0)

    def on_query_done(self, q: Query) -> None:
        outcome = q.status
        if outcome != DROPPED and q.finish_s is not None and q.finish_s - q.arrival_s > self.slo_s:
            outcome = "late"
        self.queries.labels(q.path, outcome).inc()
        if outcome != DROPPED and self.quality_table is not None:
            second = int(time.monotonic())
            if not self._served or self._served[-1][0] != second:
                self._served.append((second, {}))
            bucket = self._served[-1][1]
            key = (q.pair, q.path)
            bucket[key] = bucket.get(key, 0) + 1
        if q.finish_s is not None:
            self.query_latency.observe((q.finish_s - q.arrival_s) * self.scale)
        if q.start_s is not None:
            self.queue_wait.observe((q.start_s - q.arrival_s) * self.scale)

    def on_batch(self, worker: int, model: str, size: int, start_s: float, end_s: float) -> None:
        self.batch_size.labels(model).observe(size)
        self.batch_latency.labels(model).observe((end_s - start_s) * self.scale)

    def on_arrival(self, now: float, n: int) -> None:
        self.arrivals.inc(n)

    def on_plan(self, now: float, plan: Plan) -> None:
        self.plans.inc()
        for gauge in (self.gpus, self.capacity):
            for model in list(gauge._metrics):
                gauge.labels(*model).set(0)
        for model, n in plan.gpus.items():
            self.gpus.labels(model).set(n)
        for model, cap in plan.capacity_qps.items():
            self.capacity.labels(model).set(cap)
        self.plan_quality.set(plan.quality)
        self.plan_feasible.set(1 if plan.feasible else 0)
        self.config.info(
            {
                "policy": plan.policy,
                "light": plan.light,
                "heavy": plan.heavy or "",
                "r": f"{plan.r:g}",
                "d": f"{plan.d:g}",
                "feasible": str(plan.feasible).lower(),
                "batch": ",".join(f"{m}={b}" for m, b in plan.batch.items()),
            }
        )

    def on_switch(self, worker: int, model: str, seconds: float, found: str = "disk") -> None:
        self.switches.labels(model, found).inc()
        if seconds == seconds:  # not NaN
            self.switch_latency.labels(model).observe(seconds)

    def on_plan_change(self, now: float, plan: Plan, reason: str) -> None:
        self.plan_changes.labels(reason).inc()

    def refresh_from(self, snapshot: ServiceSnapshot) -> None:
        """The gauges read on demand (before a scrape, on each dashboard tick): queues,
        workers by state, served quality, the controller's live demand estimate."""
        self.observe_queues(snapshot.engine.queues)
        self.observe_workers(snapshot.engine.worker_states())
        self.observe_served_quality()
        self.demand.set(snapshot.demand_qps)

    def observe_queues(self, queues: Mapping[str, int]) -> None:
        for model, n in queues.items():
            self.queue_length.labels(model).set(n)

    def observe_served_quality(self) -> float:
        """Set hadis_served_quality from the queries served in the last SERVED_WINDOW_S."""
        table = self.quality_table
        if table is None:
            return math.nan
        cutoff = time.monotonic() - SERVED_WINDOW_S
        while self._served and self._served[0][0] < cutoff:
            self._served.popleft()
        groups: dict[tuple[str, ...], dict[str, int]] = {}
        for _, bucket in self._served:
            for (pair, path), n in bucket.items():
                counts = groups.setdefault(pair, {LIGHT: 0, DIRECT: 0, ESCALATED: 0})
                counts[path] += n
        total = sum(sum(c.values()) for c in groups.values())
        value = math.nan
        if total:
            value = (
                sum(
                    sum(c.values()) * table.group_quality(pair, c[LIGHT], c[DIRECT], c[ESCALATED])
                    for pair, c in groups.items()
                )
                / total
            )
        self.served_quality.set(value)
        return value

    def observe_workers(self, states: dict[str, int]) -> None:
        for state in WORKER_STATES:
            self.workers.labels(state).set(states.get(state, 0))
