"""What a plan change costs while it happens: queue waits during model switches.

Adopting a plan that moves workers takes their capacity offline until the new weights are
loaded, and the queries routed to a model whose workers are still loading wait. A plan
that is feasible once loaded can so break the SLO on the way there, which a planner that
only compares end states does not see (with loads of tens of seconds, moving a whole
cluster to another model in the middle of a burst is what made HADIS late).

`worst_path_s` estimates the longest path latency of a plan adopted now, with a fluid
model over a horizon: per model, the backlog (its queue, its share of the orphaned queues,
and arrivals at the request's demand) is served by the workers that already hold its
weights until the switch ends, and by all of the plan's workers after it. A query waits
for the backlog ahead of it, then for its batch (on workers already serving, also for the
batch in progress: `PlanRequest.batch_factor`); an escalated query enters the heavy
model's queue when its light stage ends. The plan in force, kept, has no switch, but its
backlog grows over the horizon when it does not carry the demand. The controller chooses
between the new plan, steps towards it and the plan in force with it
(engine/controller.py).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hadis.core.plan import Plan, PlanRequest
from hadis.planner.in_place import gpus_by_weights, weights_of

# arrival instants at which a path is evaluated, per phase (the switch, then the rest of
# the horizon): stage latencies are piecewise linear in between
_STEPS = 8


@dataclass(frozen=True)
class FluidStage:
    """One model's FIFO queue during a transition: `queued` queries at time 0 (the oldest
    has waited `head_age_s`), `rate` arrivals per second, served at `kept_qps` until
    `switch_s`, then at `full_qps`."""

    queued: float
    rate: float
    kept_qps: float
    full_qps: float
    switch_s: float
    batch_s: float
    batch_factor: float
    head_age_s: float = 0.0
    rate_switch: float | None = None  # arrivals per second until switch_s (default: rate)

    def latency_s(self, t: float) -> float:
        """Stage latency (wait plus batch) of a query arriving at time t >= 0."""
        if self.full_qps <= 0:
            return math.inf
        steady = self.batch_factor * self.batch_s
        kept, s = self.kept_qps, self.switch_s
        early = self.rate if self.rate_switch is None else self.rate_switch
        if t < s:
            ahead = max(0.0, self.queued + (early - kept) * t)
            left = s - t  # served at kept_qps until the switch ends
            if kept > 0 and kept * left >= ahead:
                return ahead / kept + steady
            # waits for the switch: the loaded workers start afresh (no batch in progress)
            return left + (ahead - kept * left) / self.full_qps + self.batch_s
        at_switch = max(0.0, self.queued + (early - kept) * s)
        ahead = max(0.0, at_switch + (self.rate - self.full_qps) * (t - s))
        return ahead / self.full_qps + steady

    def oldest_s(self) -> float:
        """Latency of the oldest queued query (first in line), counted from its arrival."""
        if self.queued <= 0:
            return 0.0
        if self.full_qps <= 0:
            return math.inf
        first = (
            self.batch_factor * self.batch_s
            if self.kept_qps > 0
            else (self.switch_s + self.batch_s)
        )
        return self.head_age_s + first


def entry_shares(plan: Plan) -> dict[str, float]:
    """Where a new (or migrated) query enters the plan, per model."""
    if plan.split is not None:
        return {m: s for m, s in plan.split.items() if s > 0}
    if plan.heavy is None:
        return {plan.light: 1.0}
    if not plan.gpus.get(plan.light):
        return {plan.heavy: 1.0}
    out = {plan.light: 1.0 - plan.r, plan.heavy: plan.r}
    return {m: s for m, s in out.items() if s > 0}


def kept_gpus(plan: Plan, held: Mapping[str, int], req: PlanRequest) -> dict[str, float]:
    """Per model of `plan`, the workers that serve it without loading anything: those that
    hold its weights (`held`: GPUs per set of weights; shared pro rata between variants
    of one set)."""
    profile = req.profile
    wanted = gpus_by_weights(profile, plan.gpus)
    out = {}
    for m, g in plan.gpus.items():
        w = weights_of(profile, m)
        out[m] = g * min(1.0, held.get(w, 0) / wanted[w]) if wanted[w] else 0.0
    return out


def fluid_stages(
    plan: Plan,
    req: PlanRequest,
    held: Mapping[str, int],
    *,
    switch_s: float,
    ages: Mapping[str, float] | None = None,
) -> dict[str, FluidStage]:
    """Per model `plan` serves, its queue while the plan is adopted now from workers that
    hold `held` (`ages`: per model, how long its oldest queued query has waited)."""
    ages = ages or {}
    profile = req.profile
    kept = kept_gpus(plan, held, req)
    orphans = [m for m, n in req.queue.items() if n > 0 and not plan.gpus.get(m)]
    orphaned = sum(req.queue[m] for m in orphans)
    orphan_age = max((ages.get(m, 0.0) for m in orphans), default=0.0)
    entry = entry_shares(plan)
    scale = req.demand_qps / plan.demand_qps if plan.demand_qps > 0 else 0.0
    rate = {m: plan.load_qps.get(m, 0.0) * scale for m in plan.gpus}
    early = dict(rate)  # arrivals until the switch ends
    light, heavy = plan.light, plan.heavy
    if bypasses(plan, kept, req, switch_s):
        # the engine answers with the light model while every heavy worker loads
        # (Engine._heavy_answers): the heavy model gets nothing until the switch ends
        early[light] = rate[light] + plan.r * req.demand_qps
        early[heavy] = 0.0  # type: ignore[index]
        entry = {light: sum(entry.values())}
    out = {}
    for m, g in plan.gpus.items():
        if g <= 0:
            continue
        variant = profile.model(m)
        per_gpu = variant.capacity_qps(plan.batch[m])
        migrated = orphaned * entry.get(m, 0.0)
        out[m] = FluidStage(
            queued=req.queue.get(m, 0) + migrated,
            rate=rate[m],
            kept_qps=kept[m] * per_gpu,
            full_qps=g * per_gpu,
            switch_s=switch_s if kept[m] < g else 0.0,
            batch_s=variant.batch_latency_s(plan.batch[m]),
            batch_factor=req.batch_factor,
            head_age_s=max(ages.get(m, 0.0), orphan_age if migrated > 0 else 0.0),
            rate_switch=early[m],
        )
    return out


def bypasses(plan: Plan, kept: Mapping[str, float], req: PlanRequest, switch_s: float) -> bool:
    """While the plan is adopted, its light model answers for the heavy one: every heavy
    worker loads, some light worker does not, and a query could not wait for the load and
    its heavy stage within the SLO (Engine._heavy_answers)."""
    heavy = plan.heavy
    if (
        plan.split is not None
        or heavy is None
        or heavy == plan.light
        or plan.gpus.get(heavy, 0) <= 0
        or kept.get(heavy, 0.0) > 0
        or kept.get(plan.light, 0.0) <= 0
    ):
        return False
    stage = req.stage_s(req.profile.model(heavy).batch_latency_s(plan.batch[heavy]), heavy)
    return switch_s + stage > req.slo_s


def paths(plan: Plan) -> list[tuple[str, ...]]:
    """The models a query passes through, per path the plan serves."""
    if plan.split is not None:
        return [(m,) for m, s in plan.split.items() if s > 0 and plan.gpus.get(m)]
    heavy = plan.heavy
    if heavy is None:
        return [(plan.light,)]
    if not plan.gpus.get(plan.light):
        return [(heavy,)]
    out: list[tuple[str, ...]] = []
    if plan.r < 1:
        out.append((plan.light,))
    if plan.r > 0:
        out.append((heavy,))
    if plan.d > 0 and plan.gpus.get(heavy):
        out.append((plan.light, heavy))
    return out


def worst_path_s(
    plan: Plan,
    req: PlanRequest,
    held: Mapping[str, int],
    *,
    switch_s: float,
    horizon_s: float,
    ages: Mapping[str, float] | None = None,
) -> float:
    """The longest path latency (seconds) of a query while `plan` is adopted now from
    workers holding `held` (GPUs per set of weights), over `horizon_s`."""
    stages = fluid_stages(plan, req, held, switch_s=switch_s, ages=ages)
    bypass_until = switch_s if bypasses(plan, kept_gpus(plan, held, req), req, switch_s) else 0.0
    s = min(switch_s, horizon_s)
    times = [s * i / _STEPS for i in range(_STEPS)]
    times += [s + (horizon_s - s) * i / _STEPS for i in range(_STEPS + 1)]
    worst = 0.0
    for models in paths(plan):
        if any(m not in stages for m in models):
            continue
        first = stages[models[0]]
        # the oldest queued query, then arrivals over the horizon; each later stage is
        # entered when the one before ends
        starts = [(-first.head_age_s, first.oldest_s())] if first.queued else []
        starts += [(t, first.latency_s(t)) for t in times]
        for arrived, spent in starts:  # (arrival time, latency so far)
            for m in models[1:]:
                entered = arrived + spent
                if entered < bypass_until:  # answered by the light model
                    break
                spent += stages[m].latency_s(min(horizon_s, max(0.0, entered)))
            worst = max(worst, spent)
    return worst


def choose(
    options: Sequence[Plan],
    req: PlanRequest,
    held: Mapping[str, int],
    *,
    switch_s: float,
    horizon_s: float,
    ages: Mapping[str, float] | None = None,
    in_force: Plan | None = None,
) -> tuple[Plan, float]:
    """The first option (in order of preference) whose worst path latency while it is
    adopted fits the SLO, or, when none does, the first of the least late (lateness that
    no option avoids, e.g. of a query that has waited too long already, does not count
    against the others). The plan in force (`in_force`) is judged at the demand plans are
    made for (`PlanRequest.target_qps`): it is kept only while it carries the demand with
    the margin that pays for the switches a later, forced change will need. Returns the
    plan and its worst path seconds."""
    if not options:
        raise ValueError("choose needs at least one option")
    margin = dataclasses.replace(req, demand_qps=req.target_qps)
    scored = [
        (
            p,
            worst_path_s(
                p,
                margin if p is in_force else req,
                held,
                switch_s=switch_s,
                horizon_s=horizon_s,
                ages=ages,
            ),
        )
        for p in options
    ]
    bar = max(req.slo_s, min(worst for _, worst in scored))
    return next(pw for pw in scored if pw[1] <= bar + 1e-9)
