"""What a plan change costs while it happens: queue waits during model switches.

Adopting a plan that moves workers takes their capacity offline until the new weights are
loaded, and the queries routed to a model whose workers are still loading wait. A plan
that is feasible once loaded can so break the SLO on the way there, which a planner that
only compares end states does not see (with loads of tens of seconds, moving a whole
cluster to another model in the middle of a burst is what made HADIS late).

`Transition.outlook` estimates what a plan adopted now does, with a fluid model over a
horizon: per model, the backlog (its queue, its share of the orphaned queues, and
arrivals at the request's demand) is served by the workers that already hold its weights
until the switch ends, and by all of the plan's workers after it. A query waits for the
backlog ahead of it, then for its batch (on workers already serving, also for the batch
in progress: `PlanRequest.batch_factor`); an escalated query enters the heavy model's
queue when its light stage ends; while every heavy worker loads, the light model answers
for it when waiting would be late (`Engine._heavy_answers`). The plan in force, kept, has
no switch, but its backlog grows over the horizon when it does not carry the demand. The
controller chooses with it between the new plan, the policy's next best plans, the best
plan on the loaded weights and the plan in force (engine/controller.py).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hadis.core.plan import Plan, PlanRequest
from hadis.planner.in_place import gpus_by_weights, loads_needed, weights_of

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
) -> tuple[dict[str, FluidStage], bool]:
    """Per model `plan` serves, its queue while the plan is adopted now from workers that
    hold `held` (`ages`: per model, how long its oldest queued query has waited); and
    whether the light model answers for the heavy one meanwhile (`bypasses`)."""
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
    covered = bypasses(plan, kept, req, switch_s)
    if covered:
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
    return out, covered


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


def path_shares(plan: Plan) -> list[tuple[tuple[str, ...], float]]:
    """The models a query passes through, per path the plan serves, with the share of the
    queries that take it."""
    if plan.split is not None:
        return [((m,), s) for m, s in plan.split.items() if s > 0 and plan.gpus.get(m)]
    heavy = plan.heavy
    if heavy is None:
        return [((plan.light,), 1.0)]
    if not plan.gpus.get(plan.light):
        return [((heavy,), 1.0)]
    d = plan.d if plan.gpus.get(heavy) else 0.0
    out = [
        ((plan.light,), (1 - plan.r) * (1 - d)),
        ((heavy,), plan.r),
        ((plan.light, heavy), (1 - plan.r) * d),
    ]
    return [(models, share) for models, share in out if share > 0]


@dataclass(frozen=True)
class Outlook:
    """What adopting a plan now does to its queries over the horizon (fluid estimate)."""

    worst_s: float  # the longest path latency
    late: float  # queries (queued now or arriving) whose path latency passes the SLO


@dataclass(frozen=True)
class Transition:
    """Adopting a plan now: the workers hold `held` GPUs per set of weights, a load takes
    `switch_s`, the estimate covers `horizon_s` (the next re-plan), and `ages` says per
    model how long its oldest queued query has waited. `burst_qps`: a plan that loads
    models keeps the SLO only if it does at this demand, when it is higher than the
    request's (a burst seen lately may come while the loads happen). `in_force_qps`: the
    demand the plan in force is judged at (default: the request's target)."""

    held: Mapping[str, int]
    switch_s: float
    horizon_s: float
    ages: Mapping[str, float] = field(default_factory=dict)
    burst_qps: float = 0.0
    in_force_qps: float | None = None

    def outlook(self, plan: Plan, req: PlanRequest) -> Outlook:
        """The fluid estimate of `plan` adopted now: arrivals at the request's demand on
        each path, each later stage entered when the one before ends, and the queries
        queued now."""
        held, switch_s, horizon_s = self.held, self.switch_s, self.horizon_s
        stages, covered = fluid_stages(plan, req, held, switch_s=switch_s, ages=self.ages)
        until = switch_s if covered else 0.0  # the light model answers for the heavy one
        s = min(switch_s, horizon_s)
        times = [s * i / _STEPS for i in range(_STEPS)]
        times += [s + (horizon_s - s) * i / _STEPS for i in range(_STEPS + 1)]
        spans = [b - a for a, b in zip(times, times[1:], strict=False)] + [0.0]
        slo = req.slo_s
        worst = late = 0.0

        def through(models: tuple[str, ...], arrived: float, spent: float) -> float:
            for m in models[1:]:
                entered = arrived + spent
                if entered < until:
                    break
                spent += stages[m].latency_s(min(horizon_s, max(0.0, entered)))
            return spent

        for models, share in path_shares(plan):
            if any(m not in stages for m in models):
                continue
            for t, span in zip(times, spans, strict=True):
                route = (plan.light,) if t < until and models == (plan.heavy,) else models
                latency = through(route, t, stages[route[0]].latency_s(t))
                worst = max(worst, latency)
                if latency > slo:
                    late += share * req.demand_qps * span
        for st in stages.values():  # the queued queries: the oldest first, then the rest
            if st.queued <= 0:
                continue
            head, tail = st.oldest_s(), st.latency_s(0.0)
            worst = max(worst, head)
            if max(head, tail) > slo:  # the share of the queue whose latency passes the SLO
                lo, hi = min(head, tail), max(head, tail)
                late += st.queued * (1.0 if lo > slo else (hi - slo) / (hi - lo))
        return Outlook(worst, late)

    def worst_path_s(self, plan: Plan, req: PlanRequest) -> float:
        """The longest path latency (seconds) of a query while `plan` is adopted."""
        return self.outlook(plan, req).worst_s

    def keeps_slo(self, plan: Plan, req: PlanRequest, in_force: Plan | None = None) -> bool:
        """Every query of `plan` stays within the SLO while it is adopted. The plan in
        force (`in_force`) passes only while it carries the demand with the margin plans
        are made for (`PlanRequest.target_qps`, or `in_force_qps`): the margin pays for
        the switches a later, forced change will need. A plan that loads models is judged
        at `burst_qps` when that is higher than the request's demand."""
        if plan is in_force:
            demand = req.target_qps if self.in_force_qps is None else self.in_force_qps
            req = dataclasses.replace(req, demand_qps=demand)
        elif self.burst_qps > req.demand_qps and loads_needed(self.held, plan, req.profile):
            req = dataclasses.replace(req, demand_qps=self.burst_qps)
        return self.worst_path_s(plan, req) <= req.slo_s

    def choose(
        self, options: Sequence[Plan], req: PlanRequest, in_force: Plan | None = None
    ) -> Plan:
        """The first option (in order of preference) that keeps the SLO while it is
        adopted (`keeps_slo`), or, when none does, the first of those whose outlook makes
        the fewest queries late, among those that carry the request's demand if any does."""
        if not options:
            raise ValueError("choose needs at least one option")
        for p in options:
            if self.keeps_slo(p, req, in_force):
                return p
        late = [self.outlook(p, req).late for p in options]
        # a plan that does not carry the demand makes queries late past the horizon too,
        # for as long as it stays: counted over one horizon, a whole cluster's load looked
        # as bad as staying overloaded, and a plan at a third of the demand was kept for
        # the rest of a run (INFaaS-Acc, synthetic-6, step trace, 30 s loads: 0.82
        # violations in one seed)
        carrying = [i for i, p in enumerate(options) if p.carried_qps >= req.demand_qps]
        return options[min(carrying or range(len(options)), key=lambda i: late[i])]
