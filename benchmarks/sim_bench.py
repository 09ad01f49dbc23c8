"""Simulator speed: simulated queries per second of wall time (best of 3 runs).

Cases: the paper's experiment (16 GPUs, 1.0-6.4 q/s, 3,470 s) per policy and for all
seven together, and a 16x scaled-up one (256 GPUs, 16-102 q/s) where the event loop
dominates. Planning time (HiGHS) is reported apart, since it grows with re-plans, not
with queries.
"""

from __future__ import annotations

import time

from hadis.profiles import load_profile
from hadis.sim.experiment import PAPER_POLICIES, run_policies
from hadis.sim.simulator import SimConfig, simulate
from hadis.sim.trace import azure_functions

REPEATS = 3


def _best_run(profile, trace, policy, gpus):  # noqa: ANN001, ANN202
    best = None
    for _ in range(REPEATS):
        t = time.perf_counter()
        run = simulate(profile, trace, policy, SimConfig(gpus=gpus, seed=0))
        wall = time.perf_counter() - t
        plan_s = sum(p.solve_ms for _, p in run.recorder.plans) / 1e3
        if best is None or wall < best[0]:
            best = (wall, plan_s, run)
    return best


def main() -> None:
    profile = load_profile("hadis-l40s")
    paper = azure_functions(1.0, 6.4, 10.0, seed=0)
    big = azure_functions(16.0, 102.4, 10.0, seed=0)
    print(
        f"{'case':<24} {'policy':<14} {'queries':>8} {'wall s':>7} {'plan s':>7} "
        f"{'q/s':>9} {'q/s w/o plan':>12}"
    )
    for label, trace, gpus, policies in (
        ("paper (16 GPUs)", paper, 16, PAPER_POLICIES[:-1]),
        ("scaled x16 (256 GPUs)", big, 256, ("hadis", "diffserve", "clipper-light")),
    ):
        for policy in policies:
            wall, plan_s, _ = _best_run(profile, trace, policy, gpus)
            print(
                f"{label:<24} {policy:<14} {len(trace):>8} {wall:>7.2f} {plan_s:>7.2f} "
                f"{len(trace) / wall:>9,.0f} {len(trace) / (wall - plan_s):>12,.0f}"
            )
    start = time.perf_counter()
    run_policies(profile, paper, PAPER_POLICIES, SimConfig(gpus=16, seed=0))
    wall = time.perf_counter() - start
    print(f"paper experiment, all 7 policies (oracle included): {wall:.2f} s wall")


if __name__ == "__main__":
    main()
