"""Whether a plan weathers the bursts seen lately without a change.

With model loads of tens of seconds the controller cannot follow a burst: by the time a
new plan's workers have loaded, the burst has built its queue (or is over). A plan made
for slow switches must therefore carry the bursts it is likely to meet as it is, with
its queues absorbing the peaks they can. `weathers` replays the arrival rates of the
recent past (per tick) through the plan's capacity as fluid queues, one per model at its
share of the demand, and checks that each path's latency (its stages' batches plus the
longest queue wait each model reached) stays within the SLO. A short spike above the
plan's capacity passes when its queue drains in time; a sustained burst does not.
`weathering_request` finds the demand to plan for so that the plan does (the controller
uses it when switches are slower than a tick: engine/controller.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from hadis.core.plan import Plan, PlanRequest
from hadis.planner.transition import path_shares


def replay_waits_s(plan: Plan, rates: Sequence[float], dt: float) -> dict[str, float]:
    """Per model of `plan`, the longest queue wait (seconds) over a replay of `rates`
    (arrivals per second, one value per `dt` seconds) at the plan's capacity, starting
    from empty queues."""
    arrivals = np.asarray(rates, dtype=float) * dt
    out: dict[str, float] = {}
    for m, load in plan.load_qps.items():
        capacity = plan.capacity_qps.get(m, 0.0)
        if load <= 0 or plan.demand_qps <= 0:
            out[m] = 0.0
            continue
        if capacity <= 0:
            out[m] = np.inf
            continue
        net = np.cumsum(arrivals * (load / plan.demand_qps) - capacity * dt)
        # Lindley's recursion q_n = max(0, q_{n-1} + x_n) from q_0 = 0, in closed form
        queue = net - np.minimum(0.0, np.minimum.accumulate(net))
        out[m] = float(queue.max(initial=0.0)) / capacity
    return out


def weathers(plan: Plan, req: PlanRequest, rates: Sequence[float], dt: float) -> bool:
    """Every path of `plan` keeps the SLO through a replay of `rates` (arrivals per second,
    one value per `dt` seconds) without a change of plan."""
    if not plan.feasible:
        return False
    waits = replay_waits_s(plan, rates, dt)
    profile = req.profile
    for models, _share in path_shares(plan):
        latency = 0.0
        for m in models:
            batch_s = profile.model(m).batch_latency_s(plan.batch[m])
            latency += req.batch_factor * batch_s + waits.get(m, 0.0)
        if latency > req.slo_s:
            return False
    return True


# bisection steps of the demand search: the demand found is within 1/32 of the span
# between the estimate and the highest rate replayed of the lowest that weathers it
_SEARCH_STEPS = 5


def weathering_request(
    plan_for: Callable[[PlanRequest], Plan],
    req: PlanRequest,
    rates: Sequence[float],
    dt: float,
    highest: float | None = None,
) -> tuple[PlanRequest, Plan | None]:
    """The request to plan with so that the plan weathers a replay of `rates`: `req` if
    its plan (`plan_for`, the policy) does, else `req` at the lowest demand between its
    own and `highest` (default: the highest rate replayed) whose plan does (bisection);
    `req` when not even the plan at `highest` does (a policy whose plan does not follow
    the demand, such as INFaaS's one step at a time, then had every option judged at that
    rate, and kept a plan far short of the demand for the rest of a run). Returns the
    request and its plan (None when the policy raised for it: the caller runs the policy
    again and handles the error)."""

    def attempt(demand: float) -> tuple[PlanRequest, Plan | None, bool]:
        r = dataclasses.replace(req, demand_qps=demand)
        try:
            plan = plan_for(r)
        except Exception:  # the caller's own call reports it
            return r, None, False
        return r, plan, weathers(plan, r, rates, dt)

    lo = req.demand_qps
    low_req, low_plan, ok = attempt(lo)
    hi = max(rates, default=0.0) if highest is None else highest
    if ok or hi <= lo:
        return low_req, low_plan
    best_req, best_plan, ok = attempt(hi)
    if not ok:  # nothing the policy plans weathers them: raising the demand buys nothing
        return low_req, low_plan
    for _ in range(_SEARCH_STEPS):
        mid = (lo + hi) / 2
        mid_req, mid_plan, ok = attempt(mid)
        if ok:
            hi, best_req, best_plan = mid, mid_req, mid_plan
        else:
            lo = mid
    return best_req, best_plan
