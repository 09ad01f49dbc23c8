"""The `oracle` fluid reference: what the planner would choose per window with hindsight.

It is a reference point, not a bound: a policy that serves queries of one window with a
plan made for another (or whose realised router/discriminator mix differs from the
table's) can beat it in some windows, and its 50 s windows hide shorter peaks. For each
window (by arrival time, window_s long) it knows the window's true demand
D_w = arrivals / window length, and takes the HADIS planner's optimum for D_w with no
over-provisioning margin, empty queues and free model switches: the quality of the best
table row (or single model) whose capacity carries D_w within the SLO on the GPUs. The
reference is the query-weighted mean of those qualities. Where not even the throughput fallback
carries D_w, the uncarried share of that window's queries counts as dropped (a fluid
estimate: no queueing, so no late queries).
"""

from __future__ import annotations

import math

import numpy as np

from hadis.core import RunSummary, WindowSummary
from hadis.engine.metrics import MAX_WINDOWS
from hadis.planner import HadisPolicy, PlanRequest
from hadis.profiles import Profile
from hadis.sim.trace import Trace


def oracle_reference(
    profile: Profile,
    trace: Trace,
    *,
    gpus: int,
    slo_s: float,
    window_s: float = 50.0,
    table: str = "full",
) -> RunSummary:
    policy = HadisPolicy(table=table)  # type: ignore[arg-type]
    n = len(trace)
    end = max(trace.duration_s, 1e-9)
    n_windows = max(1, math.ceil(end / window_s))
    win = np.minimum((trace.arrival_s // window_s).astype(int), n_windows - 1)
    # every window, or only those with arrivals when a sparse trace spans very many
    shown = np.arange(n_windows) if n_windows <= MAX_WINDOWS else np.unique(win)
    counts = np.bincount(np.searchsorted(shown, win), minlength=len(shown))
    windows, weighted, served_total = [], 0.0, 0.0
    for w, count in zip(shown.tolist(), counts.tolist(), strict=True):
        length = min(window_s, max(end - w * window_s, 1e-9))
        demand = count / length
        plan = policy.plan(PlanRequest(profile, gpus, slo_s, demand, overprovision=1.0))
        carried = 1.0 if demand == 0 else min(1.0, (demand - plan.shortfall_qps) / demand)
        served = count * carried
        weighted += plan.quality * served
        served_total += served
        windows.append(
            WindowSummary(
                start_s=w * window_s,
                queries=int(count),
                demand_qps=demand,
                served=served,
                dropped=count - served,
                late=0,
                violation_ratio=(count - served) / count if count else 0.0,
                quality=plan.quality if count else None,
                utilisation=None,
                gpus=dict(plan.gpus),
                config=f"{'->'.join(plan.pair)} r={plan.r:g} d={plan.d:g}",
            )
        )
    dropped = n - served_total
    return RunSummary(
        policy="oracle",
        queries=n,
        served=int(round(served_total)),
        dropped=int(round(dropped)),
        late=0,
        violation_ratio=dropped / n if n else 0.0,
        quality=weighted / served_total if served_total else None,
        fluid_reference=True,
        windows=windows,
    )
