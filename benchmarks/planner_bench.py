"""Planner solve time: median and p99 over many demands, per GPU count, table and solver."""

from __future__ import annotations

import numpy as np

from hadis.planner import HadisPolicy, PlanRequest
from hadis.profiles import load_profile

GPU_COUNTS = (16, 64, 256)
TABLES = ("pareto-adjacent", "full")
SOLVERS = ("milp", "enumerate")


def run(demands_per_case: int = 200) -> list[dict]:
    profile = load_profile("hadis-l40s")
    results = []
    for table in TABLES:
        for solver in SOLVERS:
            policy = HadisPolicy(table=table, solver=solver)
            for gpus in GPU_COUNTS:
                # demand from idle to ~1.5x what the cluster can carry (4.6 q/s per 16 GPUs)
                demands = np.linspace(0.05, 7.0 * gpus / 16, demands_per_case)
                policy.plan(PlanRequest(profile, gpus, 60.0, 1.0))  # warm-up
                times = [
                    policy.plan(PlanRequest(profile, gpus, 60.0, float(d))).solve_ms
                    for d in demands
                ]
                results.append(
                    {
                        "table": table,
                        "rows": len(profile.configs) if table == "full" else 46,
                        "solver": solver,
                        "gpus": gpus,
                        "median_ms": float(np.median(times)),
                        "p99_ms": float(np.percentile(times, 99)),
                    }
                )
    return results


def main() -> None:
    print("planner solve time (hadis policy, paper pool, SLO 60 s, 200 demands per case)")
    print(f"{'table':<16} {'rows':>5} {'solver':<10} {'GPUs':>5} {'median ms':>10} {'p99 ms':>8}")
    for r in run():
        print(
            f"{r['table']:<16} {r['rows']:>5} {r['solver']:<10} {r['gpus']:>5} "
            f"{r['median_ms']:>10.2f} {r['p99_ms']:>8.2f}"
        )


if __name__ == "__main__":
    main()
