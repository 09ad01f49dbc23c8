"""Planner solve time: median and p99 over many demands, per table, GPU count and solver.

Settings are explicit: the hadis policy on the bundled paper pool (hadis-l40s, SLO 60 s) and
on a synthetic fleet pool (`hadis.profiles.synthetic.synthetic_pool(24)`: 24 models, pairs
up to 3 apart, 11 x 11 (r, d) grid, 7,986 rows; SLO 60 s, 1,024 GPUs). Demands run from
idle to ~1.5x what the cluster carries. Every timed plan must come back feasible or as the
documented throughput fallback, with no more GPUs than the cluster has; otherwise the
benchmark fails. MILP times are also reported relative to exact enumeration of the same
requests (the MILP and enumeration give the same optimum; tests check both against brute
force).
"""

from __future__ import annotations

import numpy as np

from benchmarks.report import BenchmarkFailed, Figure, at_most
from hadis.planner import HadisPolicy, PlanRequest
from hadis.profiles import Profile, load_profile
from hadis.profiles.synthetic import synthetic_pool

SLO_S = 60.0
SUITE = "planner"


def _times(profile: Profile, policy: HadisPolicy, gpus: int, demands: np.ndarray) -> np.ndarray:
    policy.plan(PlanRequest(profile, gpus, SLO_S, 1.0))  # warm-up: builds the candidate set
    out = []
    for d in demands:
        plan = policy.plan(PlanRequest(profile, gpus, SLO_S, float(d)))
        if sum(plan.gpus.values()) > gpus or (not plan.feasible and "fallback" not in plan.note):
            raise BenchmarkFailed(f"bad plan at demand {d:.2f} on {gpus} GPUs: {plan}")
        out.append(plan.solve_ms)
    return np.array(out)


def _demands(profile: Profile, gpus: int, n: int) -> np.ndarray:
    fastest = max(max(m.capacity_qps(b) for b in m.batch_options) for m in profile.models)
    return np.linspace(0.05, 1.5 * fastest * gpus, n)


def run(tiny: bool = False) -> list[Figure]:
    n = 5 if tiny else 200
    paper = load_profile("hadis-l40s")
    figures: list[Figure] = []
    cases = [("pareto-adjacent", 16, 20.0), ("full", 16, 20.0), ("full", 256, 100.0)]
    if tiny:
        cases = cases[:1]
    for table, gpus, target in cases:
        demands = np.linspace(0.05, 7.0 * gpus / 16, n)  # ~4.6 q/s per 16 GPUs at the SLO
        enum = _times(paper, HadisPolicy(table=table, solver="enumerate"), gpus, demands)
        milp = _times(paper, HadisPolicy(table=table, solver="milp"), gpus, demands)
        settings = {"profile": "hadis-l40s", "table": table, "gpus": gpus, "slo_s": SLO_S}
        settings["demands"] = n
        for solver, t in (("enumerate", enum), ("milp", milp)):
            s = {**settings, "solver": solver}
            ratio = float(np.median(milp) / np.median(enum)) if solver == "milp" else None
            label = f"{table} table, {gpus} GPUs, {solver}"
            figures.append(Figure(SUITE, f"{label}: median", float(np.median(t)), "ms", s))
            figures.append(
                Figure(
                    SUITE,
                    f"{label}: p99",
                    float(np.percentile(t, 99)),
                    "ms",
                    s,
                    target=at_most(target),
                    ratio=ratio,
                    ratio_of="enumeration (median)" if ratio is not None else "",
                )
            )
    fleet_models, fleet_gpus = (6, 64) if tiny else (24, 1024)
    fleet = synthetic_pool(fleet_models)
    t = _times(fleet, HadisPolicy(solver="enumerate"), fleet_gpus, _demands(fleet, fleet_gpus, n))
    settings = {
        "profile": f"synthetic_pool({fleet_models})",
        "rows": len(fleet.configs),
        "gpus": fleet_gpus,
        "slo_s": SLO_S,
        "solver": "enumerate",
        "demands": n,
    }
    label = f"fleet: {fleet_models} models, {len(fleet.configs)} rows, {fleet_gpus} GPUs"
    figures.append(Figure(SUITE, f"{label}: median", float(np.median(t)), "ms", settings))
    figures.append(
        Figure(SUITE, f"{label}: p99", float(np.percentile(t, 99)), "ms", settings, at_most(10.0))
    )
    return figures
