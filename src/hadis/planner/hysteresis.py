"""Whether a plan change pays for its model switches (used by the controller).

A change that moves workers to other models puts queries at risk: `switch_s x` the
capacity the moving workers had (`lost_capacity_qps`), a fraction `risk` of the demand
over the re-plan horizon. It pays when its quality gain, relative to the plan in force,
is more than `risk_weight x risk`; a change that moves no worker (other r, d or batch
sizes) always pays, and so does any change away from a plan that no longer carries the
demand with its margin plus its backlog (drained over the horizon). This keeps planners
from moving whole clusters between near-equal configurations every period, which with
model loads of tens of seconds turns into a switch storm (the queues that a switch
leaves behind make the next plan flee those models, and so on).

With switches longer than the controller's tick the controller counts, instead, what
the new plan's workers that keep their weights cannot serve while the others load
(`shortfall_qps`): counting all the moving workers' capacity kept a fast plan with twice
the capacity a burst needs from ever moving back to a better model, not even in steps
that keep the burst's capacity in place. With quick switches the lost capacity stays:
the shortfall there let clumps of HTTP arrivals move workers more often, and the Ray
parity run's FID gap grew from 0.5-1.4% to 1.4-4.2% over four and five runs.
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
    need = needed_qps(plan, req, horizon_s)
    return all(plan.capacity_qps.get(m, 0.0) >= n - 1e-9 for m, n in need.items())


def needed_qps(plan: Plan, req: PlanRequest, horizon_s: float) -> dict[str, float]:
    """Per model `plan` loads, the capacity it needs: its share of the demand plans are
    made for (with the margin) plus draining its backlog within the horizon."""
    demand = plan.demand_qps
    return {
        m: req.target_qps * (load / demand if demand > 0 else 0.0) + req.queue.get(m, 0) / horizon_s
        for m, load in plan.load_qps.items()
    }


def shortfall_qps(current: Plan, new: Plan, req: PlanRequest, horizon_s: float) -> float:
    """Queries/s that `new` cannot serve while its models load: per model, what it needs
    (`needed_qps`) beyond what its workers that already hold the weights (from `current`)
    carry. Escalations to a heavy model that every worker still loads count; the light
    model's share, carried by the workers that keep it, does not."""
    profile = req.profile
    if new.demand_qps <= 0:
        return 0.0
    kept = kept_gpus(new, gpus_by_weights(profile, current.gpus), req)
    return sum(
        max(0.0, need - kept.get(m, 0.0) * profile.model(m).capacity_qps(new.batch[m]))
        for m, need in needed_qps(new, req, horizon_s).items()
    )


def lost_capacity_qps(current: Plan, new: Plan) -> float:
    """Queries/s of capacity the workers that move had on their current models."""
    return sum(
        max(0, g - new.gpus.get(m, 0)) * current.capacity_qps.get(m, 0.0) / g
        for m, g in current.gpus.items()
        if g > 0
    )


def worth_switching(
    current: Plan,
    new: Plan,
    req: PlanRequest,
    *,
    switch_s: float,
    horizon_s: float,
    shortfall: bool = False,
) -> bool:
    """Whether changing from `current` to `new` pays for its switches. The queries at risk
    are `switch_s x` the capacity the moving workers had (`lost_capacity_qps`), or with
    `shortfall` (the controller's choice when switches are longer than its tick) what
    the workers that keep their weights cannot serve meanwhile (`shortfall_qps`)."""
    moved = workers_moved(current, new, req.profile)
    if moved == 0 or switch_s <= 0 or not carries(current, req, horizon_s):
        return True
    if shortfall:
        lost = shortfall_qps(current, new, req, horizon_s)
    else:
        lost = lost_capacity_qps(current, new)
    risk = switch_s * lost / max(req.demand_qps * horizon_s, 1e-9)
    metric = req.profile.metric
    base = abs(metric.cost(current.quality)) or 1.0
    gain = (metric.cost(current.quality) - metric.cost(new.quality)) / base
    return gain > RISK_WEIGHT * risk
