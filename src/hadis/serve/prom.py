"""Prometheus metrics of the live server, fed by engine events (seconds are real)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from hadis.engine import Query
from hadis.planner import Plan

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


class ServerMetrics:
    def __init__(self, time_scale: float) -> None:
        self.scale = time_scale
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
            "hadis_queries", "Queries (images) by path and outcome", ["path", "outcome"], registry=r
        )
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
        self.queue_length = Gauge(
            "hadis_queue_length", "Queued queries per model", ["model"], registry=r
        )
        self.gpus = Gauge(
            "hadis_gpus", "Workers the current plan gives each model", ["model"], registry=r
        )
        self.plans = Counter("hadis_plans", "Plans applied", registry=r)
        self.config = Info("hadis_config", "The configuration in force", registry=r)

    def on_query_done(self, q: Query) -> None:
        self.queries.labels(q.path, q.status).inc()
        if q.finish_s is not None:
            self.query_latency.observe((q.finish_s - q.arrival_s) * self.scale)
        if q.start_s is not None:
            self.queue_wait.observe((q.start_s - q.arrival_s) * self.scale)

    def on_batch(self, worker: int, model: str, size: int, start_s: float, end_s: float) -> None:
        self.batch_size.labels(model).observe(size)
        self.batch_latency.labels(model).observe((end_s - start_s) * self.scale)

    def on_plan(self, now: float, plan: Plan) -> None:
        self.plans.inc()
        for model in list(self.gpus._metrics):  # noqa: SLF001  (reset models left out)
            self.gpus.labels(*model).set(0)
        for model, n in plan.gpus.items():
            self.gpus.labels(model).set(n)
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

    def on_switch(self, worker: int, model: str, seconds: float) -> None:
        if seconds == seconds:  # not NaN
            self.switch_latency.labels(model).observe(seconds)

    def observe_queues(self, queues: dict[str, int]) -> None:
        for model, n in queues.items():
            self.queue_length.labels(model).set(n)
