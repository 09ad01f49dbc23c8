"""One output schema for every policy's plan (`hadis plan --json`, docs/planner.md).

Paths are named by what a query goes through: `light` (the cascade's light model only),
`direct-heavy` (the router sent it to the heavy model), `escalated` (light, then heavy),
and `single-model` for plans that run one model per query (a single model, or a random
split such as Proteus's). `light`/`heavy` name a cascade's models; a plan of one model
names it `single` instead, whichever model it is. `quality` says which metric and which
way is better.
"""

from __future__ import annotations

import math
from typing import Any

from hadis.core.plan import Plan
from hadis.profiles import Profile

SINGLE = "single-model"


def is_cascade(plan: Plan) -> bool:
    return plan.split is None and plan.heavy is not None


def plan_paths(plan: Plan) -> dict[str, float]:
    """Worst-case latency per path, with the schema's path names."""
    if is_cascade(plan):
        return dict(plan.path_latency_s)
    return {SINGLE: max(plan.path_latency_s.values(), default=0.0)}


def plan_report(plan: Plan, profile: Profile, *, slo_s: float, gpus: int) -> dict[str, Any]:
    cascade = is_cascade(plan)
    single = None if cascade or plan.split else plan.light
    return {
        "policy": plan.policy,
        "profile": profile.name,
        "gpus_available": gpus,
        "slo_s": slo_s,
        "demand_qps": plan.demand_qps,
        "feasible": plan.feasible,
        "pair": list(plan.pair) if cascade else None,
        "light": plan.light if cascade else None,
        "heavy": plan.heavy if cascade else None,
        "single": single,
        "split": dict(plan.split) if plan.split else None,
        "r": plan.r if cascade else None,
        "d": plan.d if cascade else None,
        "f": plan.f if cascade else None,
        "quality": {
            "metric": profile.metric.name,
            "value": plan.quality,
            "better": profile.metric.direction.value,
        },
        "gpus": dict(plan.gpus),
        "batch": dict(plan.batch),
        "batch_latency_s": {m: profile.model(m).batch_latency_s(b) for m, b in plan.batch.items()},
        "load_qps": dict(plan.load_qps),
        "capacity_qps": dict(plan.capacity_qps),
        "headroom": {m: (h if math.isfinite(h) else None) for m, h in plan.headroom.items()},
        "paths_s": plan_paths(plan),
        "shortfall_qps": plan.shortfall_qps,
        "solve_ms": plan.solve_ms,
        "note": plan.note,
    }
