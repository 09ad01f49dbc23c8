"""Robustness: HADIS against every baseline outside the paper's conditions.

Pools: the paper's (hadis-l40s: 16 GPUs, SLO 60 s, peak 6.4 q/s), the bundled CPU demo
(demo-cpu: 2 workers, SLO 5 s, peak 6.4 q/s), and two synthetic ones from documented
formulas (`hadis.profiles.synthetic.synthetic_pool(6, pair_span=2)`: 16 GPUs, SLO 60 s;
and the same with discriminator-only rows, r = 0). A synthetic pool's peak is set at the
paper pool's load: the same share of DiffServe's light-only capacity (6.4 q/s of 12.3 on
the paper pool: 0.52; 2.48 q/s here), so DiffServe's fixed pair can carry it there too
(at 8 q/s it dropped 57-80% of the queries and every comparison was against an overload).
Traces, each seeded: the Azure Functions shape scaled to 1/6.4 of the peak .. the peak
(10 s points); bursty (`hadis trace bursty`: a Markov-modulated Poisson process at 0.6 x
peak mean, bursts 30 s, calm 90 s, burstiness 3 and 10); and a step (0.3, 1.0, 0.5 x peak
for 1,200 s each). Switch delays 3 s and 30 s; seeds 0-3 (others with
HADIS_ROBUSTNESS_SEEDS, e.g. 4,5,6,7). Each cell prints the mean over
seeds of the violation ratio, served FID and plan changes for every policy, and whether
HADIS is within the issue's acceptance of DiffServe (violations <= DiffServe's + 0.002,
FID <= + 0.02).
"""

from __future__ import annotations

import dataclasses
import itertools
import os

import numpy as np

from benchmarks.report import BenchmarkFailed, Figure, at_least
from hadis.planner.hadis_policy import diffserve_pair
from hadis.profiles import Profile, load_profile
from hadis.profiles.synthetic import synthetic_pool
from hadis.sim.simulator import SimConfig, simulate
from hadis.sim.trace import Trace, azure_functions, bursty, step

SUITE = "robustness"
POLICIES = ("hadis", "diffserve", "proteus", "infaas-acc", "clipper-light")


@dataclasses.dataclass(frozen=True)
class Pool:
    name: str
    profile: Profile
    gpus: int
    slo_s: float
    peak_qps: float


def diffserve_light_capacity(profile: Profile, gpus: int) -> float:
    """Queries/s DiffServe's pair carries with every GPU on its light model."""
    light = profile.model(diffserve_pair(profile)[0])
    return gpus * max(light.capacity_qps(b) for b in light.batch_options)


def pools() -> list[Pool]:
    paper = load_profile("hadis-l40s")
    paper_load = 6.4 / diffserve_light_capacity(paper, 16)
    syn = synthetic_pool(6, pair_span=2, name="synthetic-6")
    syn_r0 = synthetic_pool(6, pair_span=2, r_grid=(0.0,), name="synthetic-6-r0")
    syn_peak = round(paper_load * diffserve_light_capacity(syn, 16), 2)
    return [
        Pool("hadis-l40s", paper, 16, 60.0, 6.4),
        Pool("demo-cpu", load_profile("demo-cpu"), 2, 5.0, 6.4),
        Pool("synthetic-6", syn, 16, 60.0, syn_peak),
        Pool("synthetic-6-r0", syn_r0, 16, 60.0, syn_peak),
    ]


def traces(peak: float, seed: int, tiny: bool) -> dict[str, Trace]:
    span = 600.0 if tiny else 3470.0
    out = {
        "azure": azure_functions(peak / 6.4, peak, 10.0, seed=seed).until(span),
        "bursty-x3": bursty(0.6 * peak, span, burstiness=3.0, seed=seed),
        "bursty-x10": bursty(0.6 * peak, span, burstiness=10.0, seed=seed),
        "step": step([(0.3 * peak, span / 3), (peak, span / 3), (0.5 * peak, span / 3)], seed),
    }
    return out


def seeds_to_run(tiny: bool) -> tuple[int, ...]:
    """Seeds 0-3, or those of HADIS_ROBUSTNESS_SEEDS (e.g. "4,5,6,7": seeds the rules
    were not tuned on); seed 0 alone with --tiny."""
    if tiny:
        return (0,)
    chosen = os.environ.get("HADIS_ROBUSTNESS_SEEDS", "").strip()
    if not chosen:
        return (0, 1, 2, 3)
    try:
        return tuple(int(x) for x in chosen.split(","))
    except ValueError:
        raise BenchmarkFailed(f"HADIS_ROBUSTNESS_SEEDS must be integers, got {chosen!r}") from None


def run(tiny: bool = False) -> list[Figure]:
    seeds = seeds_to_run(tiny)
    switches = (3.0,) if tiny else (3.0, 30.0)
    chosen = pools()[2:3] if tiny else pools()
    print(
        f"  {'pool':<15} {'trace':<11} {'switch':>6}  "
        + "  ".join(f"{p:>21}" for p in POLICIES)
        + "   ok"
    )
    cells, ok_cells = 0, 0
    for pool, switch in itertools.product(chosen, switches):
        per_trace: dict[str, dict[str, list[tuple[float, float, float]]]] = {}
        for seed in seeds:
            for name, trace in traces(pool.peak_qps, seed, tiny).items():
                for policy in POLICIES:
                    cfg = SimConfig(
                        gpus=pool.gpus, slo_s=pool.slo_s, seed=seed, switch_delay_s=switch
                    )
                    s = simulate(pool.profile, trace, policy, cfg).summary
                    if s.served + s.dropped != len(trace) or s.planner_failures:
                        raise BenchmarkFailed(f"{policy} on {pool.name}/{name}: lost queries")
                    q = s.quality if s.quality is not None else float("nan")
                    per_trace.setdefault(name, {}).setdefault(policy, []).append(
                        (s.violation_ratio, q, s.plan_changes)
                    )
        for name, runs in per_trace.items():
            mean = {p: np.mean(np.array(v), axis=0) for p, v in runs.items()}
            h, d = mean["hadis"], mean["diffserve"]
            ok = h[0] <= d[0] + 0.002 and h[1] <= d[1] + 0.02
            cells += 1
            ok_cells += int(ok)
            print(
                f"  {pool.name:<15} {name:<11} {switch:>5.0f}s  "
                + "  ".join(f"{m[0]:7.4f} {m[1]:6.2f} {m[2]:5.0f}" for m in mean.values())
                + f"   {'yes' if ok else 'NO'}"
            )
    print("  (each policy: violation ratio, FID, plan changes; mean over seeds)")
    settings = {
        "pools": [p.name for p in chosen],
        "traces": ["azure", "bursty-x3", "bursty-x10", "step"],
        "switch_s": list(switches),
        "seeds": list(seeds),
        "peak_qps": {p.name: p.peak_qps for p in chosen},
    }
    return [
        Figure(
            SUITE,
            "cells where HADIS is within DiffServe's violations (+0.002) and FID (+0.02)",
            ok_cells / cells,
            "share",
            {**settings, "cells": cells, "ok": ok_cells},
            target=at_least(1.0),
        )
    ]
