"""Simulator speed: simulated queries per second of wall time (best of 9 interleaved runs,
against this VM's bursts of noise).

Cases, all on the bundled paper pool (hadis-l40s), SLO 60 s, seed 0, default settings of
`SimConfig` (solver: exact enumeration): the paper's experiment (Azure Functions shape,
1.0-6.4 q/s, 10 s points, 16 GPUs) and a 16x scaled-up one (16-102.4 q/s, 256 GPUs).
HADIS is timed with its planning included and reported relative to Clipper-Light on the
same trace in the same run (target >= 0.8). A run counts only if every query ended, none
was dropped and the planner never failed; otherwise the benchmark fails.
"""

from __future__ import annotations

import time

from benchmarks.report import BenchmarkFailed, Figure, at_least
from hadis.profiles import Profile, load_profile
from hadis.sim.experiment import PAPER_POLICIES, run_policies
from hadis.sim.simulator import SimConfig, SimResult, simulate
from hadis.sim.trace import Trace, azure_functions

SUITE = "sim"


def _checked(run: SimResult, trace: Trace) -> SimResult:
    s = run.summary
    ended = s.served + s.dropped
    if ended != len(trace) or s.dropped or s.planner_failures:
        raise BenchmarkFailed(
            f"{run.policy}: {ended} of {len(trace)} queries ended, {s.dropped} dropped, "
            f"{s.planner_failures} planner failures"
        )
    return run


def _best_walls(
    profile: Profile, trace: Trace, gpus: int, policies: tuple[str, ...], repeats: int
) -> dict[str, tuple[float, float]]:
    """Per policy: best wall seconds over interleaved repeats, and its planning seconds."""
    best: dict[str, tuple[float, float]] = {}
    for _ in range(repeats):
        for policy in policies:
            start = time.perf_counter()
            run = simulate(profile, trace, policy, SimConfig(gpus=gpus, seed=0))
            wall = time.perf_counter() - start
            _checked(run, trace)
            plan_s = sum(p.solve_ms for _, p in run.recorder.plans) / 1e3
            if policy not in best or wall < best[policy][0]:
                best[policy] = (wall, plan_s)
    return best


def run(tiny: bool = False) -> list[Figure]:
    profile = load_profile("hadis-l40s")
    repeats = 2 if tiny else 9  # the first run of each builds cached planner tables
    horizon = 300.0 if tiny else None
    cases = [("paper, 16 GPUs", 1.0, 6.4, 16), ("scaled x16, 256 GPUs", 16.0, 102.4, 256)]
    figures: list[Figure] = []
    for label, low, high, gpus in cases[:1] if tiny else cases:
        trace = azure_functions(low, high, 10.0, seed=0)
        if horizon is not None:
            trace = trace.until(horizon)
        settings = {
            "profile": "hadis-l40s",
            "trace": f"azure-functions {low:g}-{high:g} q/s, 10 s points, seed 0",
            "queries": len(trace),
            "gpus": gpus,
            "slo_s": 60.0,
            "repeats": repeats,
        }
        best = _best_walls(profile, trace, gpus, ("hadis", "clipper-light"), repeats)
        (h_wall, h_plan), (c_wall, _) = best["hadis"], best["clipper-light"]
        figures.append(
            Figure(
                SUITE,
                f"{label}: clipper-light simulated q/s",
                len(trace) / c_wall,
                "q/s",
                {**settings, "policy": "clipper-light"},
            )
        )
        figures.append(
            Figure(
                SUITE,
                f"{label}: hadis simulated q/s (planning {h_plan / h_wall:.0%} of wall)",
                len(trace) / h_wall,
                "q/s",
                {**settings, "policy": "hadis", "planning_s": h_plan},
            )
        )
        figures.append(
            Figure(
                SUITE,
                f"{label}: hadis / clipper-light throughput",
                c_wall / h_wall,
                "ratio",
                settings,
                target=at_least(0.8),
            )
        )
    if not tiny:
        trace = azure_functions(1.0, 6.4, 10.0, seed=0)
        start = time.perf_counter()
        run_policies(profile, trace, PAPER_POLICIES, SimConfig(gpus=16, seed=0))
        figures.append(
            Figure(
                SUITE,
                "paper experiment, all 7 policies (oracle included)",
                time.perf_counter() - start,
                "s",
                {"profile": "hadis-l40s", "queries_per_policy": len(trace), "gpus": 16},
            )
        )
    return figures
