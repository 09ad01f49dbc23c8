"""Turn a chosen candidate, batch sizes and GPU counts into a Plan."""

from __future__ import annotations

from collections.abc import Mapping

from hadis.core.plan import Plan, PlanRequest, carried_demand
from hadis.planner.candidates import Candidate


def spread_spare_gpus(
    req: PlanRequest, shares: Mapping[str, float], batch: Mapping[str, int], gpus: dict[str, int]
) -> dict[str, int]:
    """Give unused GPUs, one at a time, to the loaded model with the least relative headroom.

    Spare GPUs shorten queues; a plan that leaves them idle gains nothing.
    """
    gpus = dict(gpus)
    loaded = [m for m, s in shares.items() if s > 0]
    if not loaded:
        return gpus
    demand = max(req.demand_qps, 1e-9)
    per_gpu = {m: req.profile.model(m).capacity_qps(batch[m]) for m in loaded}
    for _ in range(req.gpus - sum(gpus.values())):
        worst = min(loaded, key=lambda m: (gpus.get(m, 0) * per_gpu[m] / (demand * shares[m]), m))
        gpus[worst] = gpus.get(worst, 0) + 1
    return gpus


def assemble_plan(
    req: PlanRequest,
    policy: str,
    cand: Candidate,
    batch: Mapping[str, int],
    gpus: Mapping[str, int],
    *,
    feasible: bool,
    solve_ms: float,
    spread_spare: bool = True,
    note: str = "",
    admission_factor: float | None = None,
    split: Mapping[str, float] | None = None,
    quality: float | None = None,
) -> Plan:
    shares = dict(cand.shares) if split is None else dict(split)
    batch = {m: batch[m] for m in shares}
    gpus_out = {m: int(gpus.get(m, 0)) for m in shares}
    if spread_spare:
        gpus_out = spread_spare_gpus(req, shares, batch, gpus_out)
    profile = req.profile
    load = {m: req.demand_qps * s for m, s in shares.items()}
    capacity = {m: gpus_out[m] * profile.model(m).capacity_qps(batch[m]) for m in shares}

    def path(m: str) -> float:
        return req.stage_s(profile.model(m).batch_latency_s(batch[m]), m)

    paths: dict[str, float] = {}
    if split is not None:
        paths = {m: path(m) for m in shares}
    else:
        if cand.r < 1:
            paths["light"] = path(cand.light)
        if cand.heavy is not None and cand.r > 0:
            paths["direct-heavy"] = path(cand.heavy)
        if cand.heavy is not None and cand.escalates:
            paths["escalated"] = path(cand.light) + path(cand.heavy)
    carried = carried_demand(capacity, shares)
    # a plan whose planned path latency breaks the SLO is never reported feasible (a
    # fallback may pick batch 1 when no batch size fits)
    feasible = feasible and all(s <= req.slo_s + 1e-9 for s in paths.values())
    return Plan(
        policy=policy,
        light=cand.light,
        heavy=cand.heavy,
        r=cand.r,
        d=cand.d,
        gpus=gpus_out,
        batch=batch,
        quality=cand.quality if quality is None else quality,
        feasible=feasible,
        demand_qps=req.demand_qps,
        load_qps=load,
        capacity_qps=capacity,
        path_latency_s=paths,
        shortfall_qps=max(0.0, req.demand_qps - carried),
        solve_ms=solve_ms,
        split=dict(split) if split is not None else None,
        admission_factor=admission_factor,
        note=note,
    )
