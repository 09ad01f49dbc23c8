"""The control loop: estimate demand, re-plan every period, apply the plan.

Clock-agnostic like the engine: the driver calls `observe_arrival(now)` on each arrival and
`tick(now)` every `check_s` seconds. A tick re-plans when the period has elapsed, or early
when some model's backlog needs more than backlog_fraction x SLO to drain at the planned
capacity (the research code waited for the next period while queues grew). Demand is an
EWMA, updated every tick, of the arrival rate (arrivals per second, not in-flight counts);
an early re-plan uses the last tick's rate when that is higher (with quick switches, a
lower demand when the plan for it absorbs that rate on its queues: `_absorbing_spike`).
Queue lengths and per-model arrival rates come from the engine. If the policy raises, the
last good plan stays in force. Slow model switches shape the request too: plans keep a
capacity reserve for the switches a re-plan causes (`overprovision`), and with switches
longer than a tick they lean towards bursts (the last tick's, or those of the last
twenty minutes: `_burst_demand`) and must weather the tick rates of those twenty minutes
as they are (planner/burst.py). A new plan that loads models is adopted only if its
queries keep the SLO while the loads happen (with slow switches, at the burst or at the
rate of the last tick's second half: `_recent_rate`); otherwise one of the policy's next
best plans, the best on the loaded weights or the plan in force is (`_switch_aware`,
planner/transition.py). With slow switches an early re-plan may come while workers load,
and no re-plan moves a worker that is on its way to new weights.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter, deque

import numpy as np

from hadis.core.commands import Command
from hadis.core.config import ControllerConfig
from hadis.engine.engine import Engine
from hadis.errors import HadisError
from hadis.planner import Plan, PlanningPolicy, PlanRequest
from hadis.planner.burst import weathering_request, weathers
from hadis.planner.hysteresis import loads_needed, worth_switching
from hadis.planner.in_place import keeps_commitments
from hadis.planner.transition import Transition

log = logging.getLogger(__name__)

# plans the policy ranks for a re-plan that would load models: enough to reach, past the
# plans that load the most, one that keeps what is loaded (paper table: a few ms)
RANKED_PLANS = 32
# with quick switches, how long (in SLOs) a backlog re-plan expects a spike's rate to last
# (`Controller._absorbing_spike`; measured: docs/planner.md)
SPIKE_SLOS = 2.0


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What `decide` reads of the driver's state, taken by `due` on the driver's thread
    (`decide` may run on another)."""

    held: Counter[str]  # GPUs per set of weights the workers hold
    ages: dict[str, float]  # per model, how long its oldest queued query has waited
    rates: tuple[float, ...] = ()  # the arrival rate of each tick over the burst window
    # the burst loads are judged at: the one plans lean towards (`Controller._burst_demand`)
    # or the rate of the last tick's second half (`Controller._recent_rate`), the higher
    burst_qps: float = 0.0
    estimate_qps: float = 0.0  # the demand estimate (EWMA; on a backlog re-plan, raised)
    ewma_qps: float = 0.0  # the EWMA itself (on a backlog re-plan, before it was raised)
    tick_qps: float = 0.0  # the arrival rate over the last tick (0: not measured)
    # per set of weights some worker is moving to, the workers assigned to it
    # (`Engine.committed_weights`)
    committed: Counter[str] = dataclasses.field(default_factory=Counter)


class Controller:
    def __init__(
        self,
        engine: Engine,
        policy: PlanningPolicy,
        gpus: int,
        config: ControllerConfig | None = None,
    ) -> None:
        self.engine = engine
        self.policy = policy
        self.gpus = gpus  # workers at start; plans ask for the workers alive (engine)
        self.config = config or ControllerConfig()
        self.plan: Plan | None = None
        self.demand_qps = self.config.initial_demand_qps
        self.failures = 0
        # why the last re-plan was due: start, period, backlog, or workers (lost or back)
        self.reason = "start"
        self._workers_changed = False
        self._since = 0.0  # when the last plan was made
        self._tick_arrivals = 0
        self._late_arrivals = 0  # those of the tick's second half (`_recent_rate`)
        self._tick_since = 0.0
        self._measured = False
        self.early_replans = 0
        self.planned_for = gpus  # workers alive at the last re-plan
        self.arrivals = 0  # queries observed, admitted or not
        self.kept = 0  # re-plans that kept the plan in force (a change did not pay)
        self.on_loaded_weights = 0  # re-plans whose best plan loads, answered without a load
        self._enqueued_at_last = dict(engine.enqueued)
        self._last_demand = 0.0  # the demand the last re-plan was made for
        self._state: Snapshot | None = None  # taken by `due` for `decide`
        # the arrival rate of each tick over the burst window (bursts seen are expected again)
        window = max(1, round(self.config.burst_window_s / self.config.check_s))
        self._rates: deque[float] = deque(maxlen=window)

    def observe_arrival(self, now: float, n: int = 1) -> None:
        """n queries arrived (admitted or not: demand is what arrives, not what is let in)."""
        self._tick_arrivals += n
        self.arrivals += n
        if now >= self._tick_since + self.config.check_s / 2:
            self._late_arrivals += n

    def tick(self, now: float) -> list[Command]:
        """Called every check_s by a synchronous driver: due -> decide -> adopt."""
        req = self.due(now)
        if req is None:
            return []
        plan = self.decide(req)
        return self.adopt(now, plan) if plan is not None else []

    def start(self, now: float) -> list[Command]:
        """First plan, from the initial demand guess (raises if the policy fails)."""
        self._since = self._tick_since = now
        plan = self.decide(self._request({}))
        if plan is None:
            raise HadisError(f"planner {self.policy.name} could not make a first plan")
        return self.adopt(now, plan)

    def due(self, now: float) -> PlanRequest | None:
        """Update the demand estimate; the request to plan with if a re-plan is due.

        Due when the period has elapsed, or early when a backlog needs more than
        backlog_fraction x SLO to drain (then demand is at least the last tick's rate).
        """
        short_rate = self._tick_arrivals / max(now - self._tick_since, 1e-9)
        recent_rate = self._recent_rate(now, short_rate)
        self._tick_arrivals, self._late_arrivals, self._tick_since = 0, 0, now
        self._rates.append(short_rate)
        a = self.config.ewma_alpha
        if self._measured:
            self.demand_qps = a * short_rate + (1 - a) * self.demand_qps
        else:
            self.demand_qps, self._measured = short_rate, True
        ewma = self.demand_qps
        elapsed = now - self._since
        if elapsed <= 0 or self.engine.live_workers() == 0:
            return None
        if self._workers_changed:  # re-plan for the workers there are, whatever the period
            self._workers_changed = False
            self.reason = "workers"
        elif elapsed < self.config.period_s - 1e-9:
            # with quick switches an early re-plan waits for the last plan's loads; with
            # slow ones it may come while they happen (a burst would otherwise wait a whole
            # load for relief), and keeps the workers moving where they go (`_switch_aware`)
            if not self._backlogged() or (self._switching() and not self.slow_switches):
                return None
            self.early_replans += 1
            self.demand_qps = max(self.demand_qps, short_rate)
            self.reason = "backlog"
        else:
            self.reason = "period"
        enq = self.engine.enqueued
        per_model = {m: (enq[m] - self._enqueued_at_last.get(m, 0)) / elapsed for m in enq}
        self._enqueued_at_last = dict(enq)
        self._since = now
        burst = self._burst_qps(short_rate)
        # loads are judged at the burst's freshest rate too (`Transition.burst_qps`)
        self._state = self._snapshot(now, max(burst, recent_rate), ewma, short_rate)
        return self._request(
            {m: r for m, r in per_model.items() if r > 0}, self._burst_demand(burst)
        )

    @property
    def slow_switches(self) -> bool:
        """Model switches take longer than a tick: the controller cannot follow a burst
        (a re-plan's loads end after the next tick), so plans must weather bursts."""
        return self.engine.switch_s > self.config.check_s

    def _recent_rate(self, now: float, short_rate: float) -> float:
        """The arrival rate over the second half of the tick that ends now (the tick's
        rate when the tick was shorter than half a check). A burst that began inside the
        tick arrives faster than the whole tick's rate says: judged at that rate, the
        loads chosen at a burst's onset left the plan short of it while they happened
        (synthetic-6, strong bursts, 30 s switches, seed 0: a first burst at 60 s of about
        5 q/s measured as 3.9 at 70 s; docs/planner.md)."""
        half = now - (self._tick_since + self.config.check_s / 2)
        return self._late_arrivals / half if half > 1e-9 else short_rate

    def _burst_qps(self, short_rate: float) -> float:
        """The higher of the last tick's rate and the `burst_quantile` of the tick rates
        over the last `burst_window_s`."""
        rates = self._rates
        seen = float(np.quantile(rates, self.config.burst_quantile)) if rates else 0.0
        return max(short_rate, seen)

    def _burst_demand(self, burst: float) -> float:
        """The demand to plan for: the estimate, moved towards a burst when that is higher.
        A switch shorter than a tick lets an early re-plan follow a burst, so the estimate
        stays; a longer one lags a burst by (switch - tick), and the plan moves that share
        of a re-plan period towards the burst (30 s switches, 10 s ticks, 50 s periods: 40%
        of the way; 3 s: none). The burst (`_burst_qps`) includes those seen lately: they
        are expected again, and with slow switches there is no time to follow one."""
        lag = self.engine.switch_s - self.config.check_s
        w = min(1.0, max(0.0, lag) / self.config.period_s)
        return self.demand_qps + w * max(0.0, burst - self.demand_qps)

    def workers_changed(self) -> None:
        """A worker was lost or came back: the next tick re-plans for the workers alive."""
        self._workers_changed = True

    def skip_idle(self, ticks: int, now: float) -> None:
        """Account for `ticks` ticks without arrivals or work, ending at `now`, at once:
        the demand estimate decays as those ticks would have decayed it, and a re-plan is
        due at the next tick (the periodic ones in between would have seen no demand)."""
        if ticks <= 0:
            return
        self.demand_qps *= (1 - self.config.ewma_alpha) ** ticks
        self._tick_arrivals, self._late_arrivals, self._tick_since = 0, 0, now
        self._since = min(self._since, now - self.config.period_s)

    def decide(self, req: PlanRequest) -> Plan | None:
        """Run the policy (pure: safe off the driver's thread); None if it failed.

        With switches slower than a tick, the plan is made for the lowest demand (at least
        the request's) whose plan weathers the bursts of the burst window without a
        change (planner/burst.py); with quicker ones, a backlog re-plan first tries a
        demand below the spike's rate whose plan absorbs it (`_absorbing_spike`). A new
        plan that loads no model is adopted as it is; one that loads models is weighed
        against the alternatives by what happens while it is adopted (`_switch_aware`)."""
        state, self._state = self._state or self._snapshot(self._since), None
        rising = req.demand_qps > self._last_demand
        try:
            return self._decide(req, state, rising)
        finally:
            self._last_demand = req.demand_qps

    def _decide(self, req: PlanRequest, state: Snapshot, rising: bool) -> Plan | None:
        self.planned_for = req.gpus
        plan = None
        if self.slow_switches and self.plan is not None and state.rates:
            req, plan = weathering_request(self.policy.plan, req, state.rates, self.config.check_s)
        elif self.reason == "backlog" and self.plan is not None:
            absorbed = self._absorbing_spike(req, state, rising)
            if absorbed is not None:
                return self._counted(*absorbed, state, req)
        try:
            plan = self.policy.plan(req) if plan is None else plan
        except Exception:  # keep serving with the last good plan
            self.failures += 1
            log.exception("planner %s failed; keeping the last plan", self.policy.name)
            return None
        return self._counted(self._adoptable(req, plan, state, rising), plan, state, req)

    def _adoptable(self, req: PlanRequest, plan: Plan, state: Snapshot, rising: bool) -> Plan:
        """The policy's plan, or when it loads models what `_switch_aware` chooses."""
        current = self.plan
        fits = current is not None and sum(current.gpus.values()) <= req.gpus
        if current is None or not fits or loads_needed(state.held, plan, req.profile) == 0:
            return plan
        return self._switch_aware(req, current, plan, state, rising)

    def _counted(self, chosen: Plan, proposed: Plan, state: Snapshot, req: PlanRequest) -> Plan:
        """Count a re-plan that did not adopt the policy's plan: kept the plan in force, or
        took one on the loaded weights."""
        if chosen is not proposed:
            if chosen is self.plan:
                self.kept += 1
            elif loads_needed(state.held, chosen, req.profile) == 0:
                self.on_loaded_weights += 1
        return chosen

    def _absorbing_spike(
        self, req: PlanRequest, state: Snapshot, rising: bool
    ) -> tuple[Plan, Plan] | None:
        """With switches quicker than a tick, a backlog re-plan first tries the lowest
        demand, from the estimate before the spike up to the request's (the last tick's
        rate), whose plan drains the queue and that rate kept up for SPIKE_SLOS x SLO,
        each path within the SLO (a fluid replay, planner/burst.py); what it adopts that
        way (`_adoptable`) must weather the same replay, else the re-plan is made at the
        request's demand as before. If the spike lasts longer, its backlog brings another
        re-plan a tick later, and quick switches let that one follow. Planned at the
        spike's rate with the margin only, a burst that its queues would have absorbed
        moved workers to faster, worse models and back (robustness suite, 3 s switches,
        synthetic-6-r0 under strong bursts: FID 21.66 and 22.00 on held-out seeds 4-7 and
        8-11 against DiffServe's 21.59 and 21.82; docs/planner.md). Returns the plan
        chosen and the policy's plan."""
        dt = self.config.check_s
        ticks = max(1, round(SPIKE_SLOS * req.slo_s / dt))
        # (no tick measured, as when `decide` runs without `due`: the request's demand)
        rates = [state.tick_qps or req.demand_qps] * ticks
        rates[0] += sum(req.queue.values()) / dt  # the backlog, as if it arrived now
        calm = dataclasses.replace(req, demand_qps=min(state.ewma_qps, req.demand_qps))
        low_req, low_plan = weathering_request(
            self.policy.plan, calm, rates, dt, highest=req.demand_qps
        )
        if low_plan is None or low_req.demand_qps >= req.demand_qps:
            return None
        chosen = self._adoptable(low_req, low_plan, state, rising)
        return (chosen, low_plan) if weathers(chosen, low_req, rates, dt) else None

    def _snapshot(
        self, now: float, burst: float = 0.0, ewma: float | None = None, tick: float = 0.0
    ) -> Snapshot:
        engine = self.engine
        return Snapshot(
            engine.held_weights(),
            {m: now - t for m, t in engine.oldest_queued_s().items()},
            tuple(self._rates),
            burst,
            self.demand_qps,
            self.demand_qps if ewma is None else ewma,
            tick,
            # read only with slow switches (`_switch_aware`): a pass over the workers saved
            engine.committed_weights() if self.slow_switches else Counter(),
        )

    def _switch_aware(
        self, req: PlanRequest, current: Plan, plan: Plan, state: Snapshot, rising: bool
    ) -> Plan:
        """Choose what to adopt by what happens while it is adopted (planner/transition.py):
        of the new plan, the policy's next best plans on the workers as they are, the best
        plan on the loaded weights and the plan in force, the best in quality whose queries
        keep the SLO while its models load (the plan in force: while it carries the demand
        with the planning margin, on a periodic re-plan), else the one that makes the
        fewest late; a backlog re-plan tries the best plan on the loaded weights first. A
        plan that loads models is an option only when it pays for its switches
        (planner/hysteresis.py) and, while demand rises, carries at least what the plan in
        force carries."""
        switch_s, horizon_s = self.engine.switch_s, self.config.period_s
        profile, held = req.profile, state.held
        cost = profile.metric.cost

        options = [plan]
        ranked = getattr(self.policy, "ranked_plans", None)
        if ranked is not None:
            options += ranked(req, held, RANKED_PLANS)
        within = getattr(self.policy, "plan_within", None)
        on_held = within(req, current, held) if within is not None else None
        if on_held is not None:
            options.append(on_held)
        loads = {id(p): loads_needed(held, p, profile) for p in [*options, current]}
        # while demand rises, a change that loads models never lowers the capacity: the
        # loads would take capacity offline just before it is needed
        options = [
            p
            for p in options
            if loads[id(p)] == 0
            or (
                worth_switching(
                    current,
                    p,
                    req,
                    switch_s=switch_s,
                    horizon_s=horizon_s,
                    shortfall=self.slow_switches,
                )
                and not (rising and p.carried_qps < current.carried_qps)
            )
        ]
        if self.slow_switches and state.committed:
            # workers on their way to new weights keep going: moving them again before
            # they serve is the switch storm (synthetic-6-r0, step trace, 30 s loads:
            # backlog re-plans moved workers still loading s03 to s02, twice in 20 s)
            committed = state.committed
            options = [
                p for p in options if loads[id(p)] == 0 or keeps_commitments(p, committed, profile)
            ]
        options.append(current)
        # best quality first; among equals, the one that loads the fewest workers
        options.sort(key=lambda p: (cost(p.quality), loads[id(p)]))
        if self.reason == "backlog" and on_held is not None:
            # a backlog first tries the loaded weights: loads take capacity offline when
            # it is needed most, and over HTTP a clump of arrivals looks like a burst
            # (with loads preferred, the Ray parity run's FID gap reached 2.7%; 1.3% now)
            options.insert(0, on_held)
        # the plan in force is judged with the planning margin, except on a backlog
        # re-plan: its demand already includes the last tick's rate, and a margin on top
        # of a spike makes the controller flee good plans on noise (over HTTP, arrivals
        # come in clumps: with it, the Ray parity run's FID gap reached 3.9%)
        in_force = None if self.reason == "backlog" else current
        transition = Transition(held, switch_s, horizon_s, state.ages)
        if self.slow_switches:
            # a burst seen lately may come while models load; and the plan in force needs
            # no margin when it weathers the bursts, else the margin on the demand
            # estimate, not on a demand already raised for bursts (judged that way, it fled
            # plans that weather the bursts, in the middle of one): `_in_force_qps` (its
            # replay only when the plan in force is judged, not on a backlog re-plan)
            transition = dataclasses.replace(
                transition,
                burst_qps=state.burst_qps,
                in_force_qps=None if in_force is None else self._in_force_qps(req, current, state),
            )
        return transition.choose(options, req, in_force)

    def _in_force_qps(self, req: PlanRequest, current: Plan, state: Snapshot) -> float:
        """With slow switches, the demand the plan in force is judged at: the request's
        when the plan weathers the tick rates of the burst window followed by a period at
        the request's demand (planner/burst.py), else the planning margin on the demand
        estimate. The margin pays for the loads of a later, forced change; a plan that
        carries what came lately and what is planned for has no such change ahead. Judged
        at the margin after a burst (whose rates the estimate still carries), the plan in
        force was left for faster, worse models that it had no need of (synthetic-6-r0,
        strong bursts: FID 22.77 against DiffServe's 22.52; paper pool at 30 s: 24.21).
        Only while it carries the demand estimate, though: a plan below the steady demand
        weathers a period on its queues, and the next, until a backlog forces a change
        whose loads then come too late (paper pool, 60 s switches, seed 3: kept four
        periods at 5.98 q/s of capacity for 6.1-6.7 q/s, 0.0029 violations). The estimate,
        not the request's demand: that leans towards the bursts of the window, which the
        replay judges as they came; and no more than the median tick rate of the last
        period, which a ramp raises and a burst shorter than half a period does not (the
        estimate follows a burst within a tick or two: judged by it, a plan that weathered
        a 100 s burst was left for faster, worse models in its last tick; synthetic-6-r0,
        strong bursts, 30 s switches, seed 0: FID 22.72 against DiffServe's 22.52)."""
        ticks = round(self.config.period_s / self.config.check_s)
        ahead = [req.demand_qps] * ticks
        level = state.estimate_qps
        if state.rates:
            level = min(level, float(np.median(state.rates[-ticks:])))
        if current.carried_qps >= level and weathers(
            current, req, [*state.rates, *ahead], self.config.check_s
        ):
            return req.demand_qps
        return max(req.demand_qps, state.estimate_qps * req.overprovision)

    def gave_up(self, reason: str) -> None:
        """The driver stopped waiting for a plan (e.g. it timed out): the last good plan
        stays, and the failure is counted like one of the policy's."""
        self.failures += 1
        log.warning("planner %s: %s; keeping the last plan", self.policy.name, reason)

    def adopt(self, now: float, plan: Plan) -> list[Command]:
        """Apply a plan to the engine (on the driver's thread)."""
        self.plan = plan
        return self.engine.apply_plan(now, plan)

    def _switching(self) -> bool:
        return any(w.switching for w in self.engine.workers)

    def _backlogged(self) -> bool:
        """Some model's queue needs more than backlog_fraction x SLO to drain."""
        plan = self.plan
        if plan is None:
            return False
        limit = self.config.backlog_fraction * self.engine.config.slo_s
        for model, queued in self.engine.queue_lengths().items():
            capacity = plan.capacity_qps.get(model, 0.0)
            if capacity <= 0 or queued / capacity > limit:
                return True
        return False

    def _request(
        self, arrival_qps: dict[str, float], demand_qps: float | None = None
    ) -> PlanRequest:
        engine = self.engine
        return PlanRequest(
            engine.profile,
            self.engine.live_workers(),
            engine.config.slo_s,
            self.demand_qps if demand_qps is None else demand_qps,
            queue=engine.queue_lengths(),
            arrival_qps=arrival_qps,
            overprovision=self.overprovision,
            batch_wait=self.config.batch_wait,
            previous=self.plan,
        )

    @property
    def overprovision(self) -> float:
        """The capacity margin plans are made with: the configured one, or more when model
        switches are slow. A re-plan that moves workers takes their capacity offline for
        switch_s, a share switch_s / period_s of a re-plan period, which the plan holds in
        reserve (3 s switches every 50 s: 1.06; 30 s: 1.6)."""
        switch_share = self.engine.switch_s / self.config.period_s
        return max(self.config.overprovision, 1.0 + switch_share)
