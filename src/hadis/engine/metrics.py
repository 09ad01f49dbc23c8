"""Metrics: a recorder fed by engine events, and the summaries both modes report.

SLO violation ratio = (late + dropped) / all, where late = served after arrival + SLO.
Quality = query-weighted mean over windows of the quality of what each window served
(see engine/quality.py). Windows are by arrival time; the last one may be partial and is
weighted by its query count like the others.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from hadis.core.query import DIRECT, DROPPED, ESCALATED, LIGHT, SERVED, Query
from hadis.core.summary import RunSummary, WindowSummary
from hadis.engine.quality import QualityTable
from hadis.planner import Plan

MAX_WINDOWS = 100_000  # beyond this many, only windows with arrivals are reported


@dataclass
class MetricsRecorder:
    """An EngineListener that keeps every finished query, batch and plan."""

    queries: list[Query] = field(default_factory=list)
    batches: list[tuple[int, str, int, float, float]] = field(default_factory=list)
    plans: list[tuple[float, Plan]] = field(default_factory=list)
    # why each plan was made (the controller's reason: start, period, backlog, workers),
    # where the driver records it (`note_reason`)
    reasons: list[str] = field(default_factory=list)

    def on_query_done(self, q: Query) -> None:
        self.queries.append(q)

    def on_batch(self, worker: int, model: str, size: int, start_s: float, end_s: float) -> None:
        self.batches.append((worker, model, size, start_s, end_s))

    def on_plan(self, now: float, plan: Plan) -> None:
        self.plans.append((now, plan))

    def note_reason(self, reason: str) -> None:
        """The plans recorded since the last call were made for `reason`."""
        self.reasons.extend([reason] * (len(self.plans) - len(self.reasons)))


def served_quality(quality: QualityTable, queries: list[Query]) -> tuple[float, int]:
    """Query-weighted quality of the served queries, and how many were served."""
    groups: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
    for q in queries:
        if q.status == SERVED:
            counts = groups[q.pair]
            counts[0 if q.path == LIGHT else 1 if q.path == DIRECT else 2] += 1
    total = sum(sum(c) for c in groups.values())
    if not total:
        return math.nan, 0
    mean = sum(quality.group_quality(p, *c) * sum(c) for p, c in groups.items()) / total
    return mean, total


def summarize(
    recorder: MetricsRecorder,
    quality: QualityTable,
    *,
    slo_s: float,
    gpus: int,
    window_s: float = 50.0,
    duration_s: float | None = None,
    policy: str = "",
) -> RunSummary:
    """Overall numbers and per-window rows from one run's records."""
    qs = sorted(recorder.queries, key=lambda q: q.qid)
    n = len(qs)
    arrival = np.array([q.arrival_s for q in qs])
    finish = np.array([q.finish_s for q in qs], dtype=float)
    served = np.array([q.status == SERVED for q in qs], dtype=bool)
    dropped = np.array([q.status == DROPPED for q in qs], dtype=bool)
    late = served & (finish - arrival > slo_s + 1e-9)
    paths = np.array([q.path for q in qs]) if n else np.array([], dtype=str)
    end = duration_s if duration_s is not None else (arrival.max() if n else 0.0)
    n_windows = max(1, math.ceil(end / window_s)) if n else 0
    win = np.minimum((arrival // window_s).astype(int), max(n_windows - 1, 0))
    # Every window, or only those with arrivals when a sparse trace spans very many
    # (a run's cost must follow its queries, not its time span).
    shown = np.arange(n_windows) if n_windows <= MAX_WINDOWS else np.unique(win)
    busy = _busy_in_windows(recorder.batches, window_s, shown, end)
    windows = []
    weighted_q, weight = 0.0, 0
    for w, busy_w in zip(shown.tolist(), busy, strict=True):
        idx = np.flatnonzero(win == w)
        group = [qs[i] for i in idx]
        wq, nserved = served_quality(quality, group)
        if nserved:
            weighted_q += wq * nserved
            weight += nserved
        length = min(window_s, max(end - w * window_s, 1e-9))
        plan = _plan_at(recorder.plans, (w + 1) * window_s)
        windows.append(
            WindowSummary(
                start_s=w * window_s,
                queries=int(len(idx)),
                demand_qps=len(idx) / length,
                served=int(served[idx].sum()),
                dropped=int(dropped[idx].sum()),
                late=int(late[idx].sum()),
                violation_ratio=_ratio(late[idx].sum() + dropped[idx].sum(), len(idx)),
                quality=None if math.isnan(wq) else wq,
                utilisation=float(busy_w / (gpus * length)),
                gpus=dict(plan.gpus) if plan else {},
                config=config_label(plan) if plan else "",
            )
        )
    n_late, n_dropped = int(late.sum()), int(dropped.sum())
    latency = finish[served] - arrival[served]
    return RunSummary(
        policy=policy,
        queries=n,
        served=int(served.sum()),
        dropped=n_dropped,
        late=n_late,
        violation_ratio=_ratio(n_late + n_dropped, n),
        quality=weighted_q / weight if weight else None,
        paths={p: int(((paths == p) & served).sum()) for p in (LIGHT, DIRECT, ESCALATED)},
        latency_p50_s=float(np.percentile(latency, 50)) if latency.size else None,
        latency_p99_s=float(np.percentile(latency, 99)) if latency.size else None,
        utilisation=_busy_total(recorder.batches, end) / (gpus * end) if end > 0 else 0.0,
        plan_changes=_plan_changes(recorder.plans),
        windows=windows,
    )


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else 0.0


def _busy_in_windows(
    batches: list[tuple[int, str, int, float, float]],
    window_s: float,
    windows: np.ndarray,
    end: float,
) -> np.ndarray:
    """Busy GPU-seconds inside each of the given windows [w, w+1) x window_s, cut at `end`."""
    if not batches or not len(windows):
        return np.zeros(len(windows))
    times = np.array([(b[3], b[4]) for b in batches])
    start, stop = times[:, 0], np.minimum(times[:, 1], end)
    span = np.maximum(stop - start, 0.0)

    def before(edge: float) -> float:  # busy time before `edge`, over all batches
        return float(np.clip(edge - start, 0.0, span).sum())

    return np.array(
        [before(min((w + 1) * window_s, end)) - before(min(w * window_s, end)) for w in windows]
    )


def _busy_total(batches: list[tuple[int, str, int, float, float]], end: float) -> float:
    if not batches:
        return 0.0
    times = np.array([(b[3], b[4]) for b in batches])
    return float(np.maximum(np.minimum(times[:, 1], end) - times[:, 0], 0.0).sum())


def _plan_at(plans: list[tuple[float, Plan]], t: float) -> Plan | None:
    current = None
    for at, plan in plans:
        if at < t:
            current = plan
        else:
            break
    return current


def config_label(plan: Plan) -> str:
    """The plan's models and routing in one line (split shares, or light->heavy r, d)."""
    if plan.split:
        return "split " + "/".join(f"{m}:{s:.2f}" for m, s in plan.split.items())
    if plan.heavy is None:
        return plan.light
    return f"{plan.light}->{plan.heavy} r={plan.r:g} d={plan.d:g}"


def _plan_key(plan: Plan) -> tuple[str, tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]]:
    return config_label(plan), tuple(sorted(plan.gpus.items())), tuple(sorted(plan.batch.items()))


def plan_timeline(plans: list[tuple[float, Plan]]) -> list[int]:
    """Indices of the plans that changed the configuration, GPU assignment or batch sizes
    (the first plan included; re-adoptions of the same left out)."""
    out: list[int] = []
    for i, (_, p) in enumerate(plans):
        if not out or _plan_key(p) != _plan_key(plans[out[-1]][1]):
            out.append(i)
    return out


def _plan_changes(plans: list[tuple[float, Plan]]) -> int:
    """How many times the configuration, GPU assignment or batch sizes actually changed."""
    return max(0, len(plan_timeline(plans)) - 1)
