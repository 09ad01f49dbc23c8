"""Whether a plan change pays for its model switches (used by the controller).

A change that moves workers to other models puts at risk the queries that the new plan's
workers which keep their weights cannot serve while the others load: `switch_s x
shortfall` queries (`shortfall_qps`, at the demand plans are made for), a fraction
`risk` of the demand over the re-plan horizon. It pays when its quality gain, relative
to the plan in force, is more than `risk_weight x risk`; a change that moves no worker
(other r, d or batch sizes) always pays, and so does any change away from a plan that no
longer carries the demand with its margin plus its backlog (drained over the horizon).
This keeps planners from moving whole clusters between near-equal configurations every
period, which with model loads of tens of seconds turns into a switch storm (the queues
that a switch leaves behind make the next plan flee those models, and so on). The risk
counted all the capacity the moving workers had before: a fast plan with twice the
capacity a burst needs then never moved back to a better model, not even in steps that
keep the burst's capacity in place.
"""

from __future__ import annotations

from hadis.core.plan import Plan, PlanRequest
from hadis.planner.in_place import gpus_by_weights, loads_needed
from hadis.planner.transition import kept_gpus
from hadis.profiles import Profile

RISK_WEIGHT = 0.1  # relative quality gain worth one displaced query-fraction


def workers_moved(current: Plan, new: Plan, profile: Profile) -> int:
    """Workers that must load other weights to go from `current` to `new` (variants of the
    same weights, other steps or guidance, count as one: moving between them is free)."""
    return loads_needed(gpus_by_weights(profile, current.gpus), new, profile)


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


def shortfall_qps(current: Plan, new: Plan, req: PlanRequest, horizon_s: float) -> float:
    """Queries/s that `new` cannot serve while its models load: per model, its share of
    the demand plans are made for (with the margin) plus its backlog drained over the
    horizon (as `carries`), beyond what its workers that already hold the weights (from
    `current`) carry. Escalations to a heavy model that every worker still loads count;
    the light model's share, carried by the workers that keep it, does not."""
    profile = req.profile
    if new.demand_qps <= 0:
        return 0.0
    kept = kept_gpus(new, gpus_by_weights(profile, current.gpus), req)
    short = 0.0
    for m, load in new.load_qps.items():
        need = req.target_qps * load / new.demand_qps + req.queue.get(m, 0) / horizon_s
        capacity = kept.get(m, 0.0) * profile.model(m).capacity_qps(new.batch[m])
        short += max(0.0, need - capacity)
    return short


def worth_switching(
    current: Plan, new: Plan, req: PlanRequest, *, switch_s: float, horizon_s: float
) -> bool:
    moved = workers_moved(current, new, req.profile)
    if moved == 0 or switch_s <= 0 or not carries(current, req, horizon_s):
        return True
    risk = (
        switch_s
        * shortfall_qps(current, new, req, horizon_s)
        / max(req.demand_qps * horizon_s, 1e-9)
    )
    metric = req.profile.metric
    base = abs(metric.cost(current.quality)) or 1.0
    gain = (metric.cost(current.quality) - metric.cost(new.quality)) / base
    return gain > RISK_WEIGHT * risk
