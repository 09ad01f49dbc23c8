"""Whether a plan change pays for its model switches (used by the controller).

A change that moves workers to other models costs `switch_s` seconds of the capacity
they had on their current models: `switch_s x lost capacity` queries are displaced, a
fraction `risk` of the demand over the re-plan horizon. It pays when its quality gain,
relative to the plan in force, is more than `risk_weight x risk`; a change that moves no
worker (other r, d or batch sizes) always pays, and so does any change away from a plan
that no longer carries the demand with its margin plus its backlog (drained over the
horizon). This keeps planners from moving whole clusters between near-equal
configurations every period, which with model loads of tens of seconds turns into a
switch storm (the queues that a switch leaves behind make the next plan flee those
models, and so on).
"""

from __future__ import annotations

from collections.abc import Mapping

from hadis.core.plan import Plan, PlanRequest
from hadis.planner.in_place import gpus_by_weights
from hadis.profiles import Profile

RISK_WEIGHT = 0.1  # relative quality gain worth one displaced query-fraction


def workers_moved(current: Plan, new: Plan, profile: Profile) -> int:
    """Workers that must load other weights to go from `current` to `new` (variants of the
    same weights, other steps or guidance, count as one: moving between them is free)."""
    return loads_needed(gpus_by_weights(profile, current.gpus), new, profile)


def loads_needed(held: Mapping[str, int], new: Plan, profile: Profile) -> int:
    """Workers that must load other weights for `new`, given the GPUs per set of weights
    the workers hold."""
    then = gpus_by_weights(profile, new.gpus)
    return sum(max(0, g - held.get(w, 0)) for w, g in then.items())


def carries(plan: Plan, req: PlanRequest, horizon_s: float) -> bool:
    """The plan's capacity covers the demand plans are made for (with the margin,
    `PlanRequest.target_qps`) on every model it loads, plus draining that model's backlog
    within the horizon. With the margin: a plan that has lost it may be left while a
    change is still safe (the margin pays for the switches a forced change needs)."""
    if not plan.feasible:
        return False
    demand = plan.demand_qps
    for model, load in plan.load_qps.items():
        share = load / demand if demand > 0 else 0.0
        need = req.target_qps * share + req.queue.get(model, 0) / horizon_s
        if plan.capacity_qps.get(model, 0.0) < need - 1e-9:
            return False
    return True


def worth_switching(
    current: Plan, new: Plan, req: PlanRequest, *, switch_s: float, horizon_s: float
) -> bool:
    moved = workers_moved(current, new, req.profile)
    if moved == 0 or switch_s <= 0 or not carries(current, req, horizon_s):
        return True
    # the moving workers stop serving their current models and serve nothing until the
    # new ones are loaded: that capacity is lost for switch_s
    lost_qps = sum(
        max(0, g - new.gpus.get(m, 0)) * current.capacity_qps.get(m, 0.0) / g
        for m, g in current.gpus.items()
        if g > 0
    )
    risk = switch_s * lost_qps / max(req.demand_qps * horizon_s, 1e-9)
    metric = req.profile.metric
    base = abs(metric.cost(current.quality)) or 1.0
    gain = (metric.cost(current.quality) - metric.cost(new.quality)) / base
    return gain > RISK_WEIGHT * risk
