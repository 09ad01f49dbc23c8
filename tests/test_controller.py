import dataclasses

import pytest

from hadis.core.query import Query
from hadis.engine import (
    Controller,
    ControllerConfig,
    Engine,
    EngineConfig,
    LoadModel,
    MetricsRecorder,
)
from hadis.planner import HadisPolicy
from tests.engine_helpers import TableDiscriminator, TableRouter


class FlakyPolicy:
    """Plans like hadis, except when told to fail."""

    name = "flaky"

    def __init__(self) -> None:
        self.inner = HadisPolicy()
        self.fail = False
        self.requests = []

    def plan(self, req):
        self.requests.append(req)
        if self.fail:
            raise RuntimeError("solver crashed")
        return self.inner.plan(req)


@pytest.fixture
def setup(paper_profile):
    engine = Engine(
        paper_profile,
        16,
        EngineConfig(slo_s=60.0),
        TableRouter([0.0] * 5000),
        TableDiscriminator([1.0] * 5000),
        MetricsRecorder(),
    )
    policy = FlakyPolicy()
    ctl = Controller(
        engine, policy, 16, ControllerConfig(period_s=50.0, check_s=10.0, initial_demand_qps=1.0)
    )
    return engine, policy, ctl


def test_demand_is_an_ewma_of_arrival_rates(setup):
    engine, policy, ctl = setup
    ctl.start(0.0)
    for t in range(1, 51):  # 5 arrivals per second for 50 s (observed, not queued)
        for k in range(5):
            ctl.observe_arrival(t - 1 + k / 5)
        if t % 10 == 0:
            ctl.tick(float(t))
    assert ctl.demand_qps == pytest.approx(5.0)
    assert len(policy.requests) == 2  # the first plan and the one at t = 50
    assert policy.requests[-1].demand_qps == pytest.approx(5.0)
    for i in range(25):  # demand halves (2.5 q/s): the EWMA moves by alpha of the gap
        ctl.observe_arrival(50 + i * 0.4)
    ctl.tick(60.0)
    a = ctl.config.ewma_alpha
    assert ctl.demand_qps == pytest.approx(a * 2.5 + (1 - a) * 5.0)


def test_failed_planner_keeps_last_plan(setup):
    engine, policy, ctl = setup
    ctl.start(0.0)
    first = ctl.plan
    policy.fail = True
    for t in (10.0, 20.0, 30.0, 40.0, 50.0):
        ctl.tick(t)
    assert ctl.failures == 1 and ctl.plan is first and engine.plan is first
    policy.fail = False
    for t in (60.0, 70.0, 80.0, 90.0, 100.0):
        ctl.tick(t)
    # planning works again: a new plan, or the one in force kept because a change that
    # moves workers would not pay for its switches (planner/hysteresis.py)
    assert ctl.failures == 1 and (ctl.plan is not first or ctl.kept >= 1)


def test_backlog_triggers_an_early_replan(setup):
    engine, policy, ctl = setup
    for c in ctl.start(0.0):  # the first models load (an early re-plan waits for that)
        if isinstance(c, LoadModel):
            engine.worker_ready(c.expected_s, c.worker)
    for i in range(400):  # a burst far beyond the plan's capacity
        ctl.observe_arrival(1.0)
        engine.submit(1.0, Query(i, 1.0, 0, router_score=0.0))
    ctl.tick(10.0)
    assert ctl.early_replans == 1 and len(policy.requests) >= 2
    assert all(r.queue for r in policy.requests[1:])  # the planner saw the queues


def test_no_early_replan_while_workers_load(setup):
    engine, policy, ctl = setup
    ctl.start(0.0)  # switches started, not finished: workers are loading
    for i in range(400):
        ctl.observe_arrival(1.0)
        engine.submit(1.0, Query(i, 1.0, 0, router_score=0.0))
    ctl.tick(10.0)
    assert ctl.early_replans == 0 and len(policy.requests) == 1


def test_with_slow_switches_a_backlog_replans_while_workers_load_and_keeps_them_going(
    paper_profile,
):
    """With 30 s loads a burst does not wait for the last plan's loads to end before an
    early re-plan, and that re-plan moves no worker that is on its way to new weights
    (moving it again before it serves is the switch storm)."""
    engine = Engine(paper_profile, 16, EngineConfig(slo_s=60.0, switch_delay_s=30.0),
                    TableRouter([0.0] * 5000), TableDiscriminator([1.0] * 5000))  # fmt: skip
    policy = FlakyPolicy()
    ctl = Controller(engine, policy, 16, ControllerConfig(period_s=50.0, check_s=10.0))
    ctl.start(0.0)  # the first plan's loads started, not finished
    committed = engine.committed_weights()
    assert sum(committed.values()) == 16
    going = {w.wid: w.assigned for w in engine.workers}
    for i in range(400):  # a burst far beyond the first plan's capacity
        ctl.observe_arrival(1.0)
        engine.submit(1.0, Query(i, 1.0, 0, router_score=0.0))
    ctl.tick(10.0)
    assert ctl.early_replans == 1 and len(policy.requests) > 1
    weights = {w.wid: paper_profile.model(w.assigned).weights for w in engine.workers}
    assert weights == {wid: paper_profile.model(m).weights for wid, m in going.items()}


def test_plans_keep_a_reserve_for_slow_model_switches(paper_profile):
    """The margin is the configured one, or the share of a re-plan period that a switch
    takes offline, whichever is larger."""
    from hadis.core import ControllerConfig
    from hadis.engine import Controller, Engine, EngineConfig
    from tests.engine_helpers import TableDiscriminator, TableRouter

    def margin(switch_s):
        engine = Engine(paper_profile, 2, EngineConfig(60.0, switch_delay_s=switch_s),
                        TableRouter([0.0]), TableDiscriminator([1.0]))  # fmt: skip
        return Controller(engine, None, 2, ControllerConfig(period_s=50.0)).overprovision

    assert margin(0.0) == pytest.approx(1.05) and margin(2.5) == pytest.approx(1.05)
    assert margin(30.0) == pytest.approx(1.6) and margin(60.0) == pytest.approx(2.2)


@pytest.mark.parametrize("switch_s, share", [(0.0, 0.0), (3.0, 0.0), (30.0, 0.4), (70.0, 1.0)])
def test_with_slow_switches_a_plan_is_made_for_the_burst_it_sees(paper_profile, switch_s, share):
    """1 q/s for 40 s, then a 10 s tick at 9 q/s: the periodic re-plan at t = 50 plans for
    the smoothed estimate moved towards 9 q/s by (switch - tick) / period: not at all when
    a switch is shorter than a controller tick (an early re-plan follows the burst)."""
    engine = Engine(paper_profile, 16, EngineConfig(60.0, switch_delay_s=switch_s),
                    TableRouter([0.0] * 5000), TableDiscriminator([1.0] * 5000))  # fmt: skip
    policy = FlakyPolicy()
    ctl = Controller(engine, policy, 16, ControllerConfig(period_s=50.0, initial_demand_qps=1.0))
    ctl.start(0.0)
    for t in range(1, 51):
        for _ in range(1 if t <= 40 else 9):
            ctl.observe_arrival(t - 0.5)
        if t % 10 == 0:
            ctl.tick(float(t))
    estimate = ctl.demand_qps  # the EWMA after the burst tick
    assert 1.0 < estimate < 9.0
    assert policy.requests[-1].demand_qps == pytest.approx(estimate + share * (9.0 - estimate))


@pytest.mark.parametrize("switch_s, share", [(3.0, 0.0), (30.0, 0.4)])
def test_with_slow_switches_a_plan_expects_the_bursts_seen_lately(paper_profile, switch_s, share):
    """A burst tick (9 q/s) 30 s before a periodic re-plan, in calm (1 q/s) otherwise: with
    slow switches the plan still leans towards it (the burst quantile of the tick rates
    over the burst window; 1.0 here: the highest), with quick ones it does not; a burst
    older than the window is forgotten."""
    engine = Engine(paper_profile, 16, EngineConfig(60.0, switch_delay_s=switch_s),
                    TableRouter([0.0] * 5000), TableDiscriminator([1.0] * 5000))  # fmt: skip
    policy = FlakyPolicy()
    config = ControllerConfig(
        period_s=50.0, initial_demand_qps=1.0, burst_quantile=1.0, burst_window_s=60.0
    )
    ctl = Controller(engine, policy, 16, config)
    ctl.start(0.0)
    for t in range(1, 151):
        for _ in range(9 if 10 < t <= 20 or 110 < t <= 120 else 1):
            ctl.observe_arrival(t - 0.5)
        if t % 10 == 0:
            ctl.tick(float(t))
            if t in (50, 100, 150):
                estimate = ctl.demand_qps
                planned = policy.requests[-1].demand_qps
                burst = 1.0 if t == 100 else 9.0  # at 100 the burst at 20 is 80 s old
                assert planned == pytest.approx(estimate + share * max(0.0, burst - estimate))


@pytest.mark.parametrize("switch_s", [3.0, 30.0])
def test_loads_are_judged_at_the_rate_of_a_burst_that_began_inside_the_tick(
    paper_profile, switch_s
):
    """1 q/s for 45 s, then 9 q/s: the tick that ends at 50 s measures 5 q/s, its second
    half 9. The plan is made from the tick's rate as before, but what `decide` judges a
    plan's loads at (the snapshot's burst) is the second half's rate; a tick whose second
    half is calm leaves the burst at the tick's rate."""
    engine = Engine(paper_profile, 16, EngineConfig(60.0, switch_delay_s=switch_s),
                    TableRouter([0.0] * 5000), TableDiscriminator([1.0] * 5000))  # fmt: skip
    config = ControllerConfig(period_s=50.0, initial_demand_qps=1.0, burst_quantile=1.0)
    ctl = Controller(engine, FlakyPolicy(), 16, config)
    ctl.start(0.0)
    for t in range(1, 51):
        for k in range(1 if t <= 45 else 9):
            ctl.observe_arrival(t - 1 + k / 9)
        if t % 10 == 0 and t < 50:
            ctl.tick(float(t))
    req = ctl.due(50.0)
    assert req is not None and ctl._state is not None
    assert ctl._state.tick_qps == pytest.approx(5.0)
    assert ctl._state.burst_qps == pytest.approx(9.0)
    share = 0.4 if switch_s == 30.0 else 0.0  # (switch - tick) / period, as before
    assert req.demand_qps == pytest.approx(ctl.demand_qps + share * (5.0 - ctl.demand_qps))
    quiet = Controller(engine, FlakyPolicy(), 16, dataclasses.replace(config, period_s=10.0))
    quiet.start(0.0)
    for k in range(50):  # 9 q/s in the first five seconds, 1 q/s in the last five
        quiet.observe_arrival(k * 5 / 45 if k < 45 else 5.0 + (k - 45))
    quiet.due(10.0)
    assert quiet._state is not None
    assert quiet._state.tick_qps == pytest.approx(5.0)
    assert quiet._state.burst_qps == pytest.approx(5.0)


def test_plan_within_loads_no_model(demo_profile):
    """The best plan on the weights a plan holds: on demo-cpu, base-8 and base-25 are one
    set of weights, tiny-4 another; a plan on (base-8, base-25) can move its two workers
    between those variants but never to tiny-4."""
    from hadis.core.plan import PlanRequest
    from hadis.planner import DiffServePolicy
    from hadis.planner.in_place import gpus_by_weights

    policy = HadisPolicy()
    held = DiffServePolicy().plan(PlanRequest(demo_profile, 2, 5.0, 6.0))
    assert set(held.gpus) == {"base-8", "base-25"}  # a cascade on the base weights
    for demand in (2.0, 6.0, 9.0, 12.0):
        req = PlanRequest(demo_profile, 2, 5.0, demand, queue={"base-8": 4})
        within = policy.plan_within(req, held)
        assert within is not None and within.feasible
        assert "tiny-4" not in within.gpus
        assert gpus_by_weights(demo_profile, within.gpus) == gpus_by_weights(
            demo_profile, held.gpus
        )
        best = policy.plan(req)
        assert "tiny-4" in best.gpus  # HADIS's best plan routes around the tiny model
        assert not demo_profile.metric.better(within.quality, best.quality)
        if demand == 12.0:  # on the base weights only base-8 on both workers carries it
            assert within.gpus == {"base-8": 2}


def _with_load_s(profile, load_s: float):
    models = tuple(dataclasses.replace(m, load_s=load_s, reload_s=load_s) for m in profile.models)
    return dataclasses.replace(profile, models=models)


@pytest.mark.parametrize(
    "load_s, reason, loads_tiny",
    [(6.0, "period", False), (0.2, "period", True), (0.2, "backlog", False)],
)
def test_a_replan_whose_load_would_break_the_slo_keeps_to_the_loaded_weights(
    demo_profile, load_s, reason, loads_tiny
):
    """A re-plan whose best plan loads the tiny model: with a load longer than the SLO the
    queries sent there would be late, so the best plan on the loaded (base) weights is
    taken; with a quick load the best plan is, except on a backlog re-plan, which tries
    the loaded weights first."""
    from hadis.core.plan import PlanRequest
    from hadis.planner import DiffServePolicy

    profile = _with_load_s(demo_profile, load_s)
    engine = Engine(
        profile,
        2,
        EngineConfig(slo_s=5.0),
        TableRouter([0.0] * 10),
        TableDiscriminator([1.0] * 10),
        MetricsRecorder(),
    )
    ctl = Controller(
        engine,
        HadisPolicy(),
        2,
        ControllerConfig(period_s=50.0, check_s=10.0, initial_demand_qps=6.0),
    )
    ctl.adopt(0.0, DiffServePolicy().plan(PlanRequest(profile, 2, 5.0, 6.0)))
    for w in engine.workers:  # the base weights are loaded
        if w.switching:
            engine.worker_ready(0.0, w.wid)
    assert set(ctl.plan.gpus) == {"base-8", "base-25"}
    burst = PlanRequest(profile, 2, 5.0, 12.0)
    assert "tiny-4" in HadisPolicy().plan(burst).gpus  # the best plan loads the tiny model
    ctl.reason = reason
    chosen = ctl.decide(burst)
    assert ("tiny-4" in chosen.gpus) == loads_tiny
    if not loads_tiny:
        assert chosen.gpus == {"base-8": 2}
        assert ctl.on_loaded_weights == 1


class FixedPolicy:
    """Always proposes the same plan."""

    name = "fixed"

    def __init__(self, plan):
        self.fixed = plan

    def plan(self, req):
        return self.fixed


def _loaded(profile, in_force, policy, workers=8):
    """A controller whose plan in force has its models loaded on every worker (SLO 30 s,
    1 s switches)."""
    engine = Engine(
        profile,
        workers,
        EngineConfig(slo_s=30.0, switch_delay_s=1.0),
        TableRouter([0.0] * 10),
        TableDiscriminator([1.0] * 10),
        MetricsRecorder(),
    )
    ctl = Controller(engine, policy, workers, ControllerConfig(period_s=50.0, check_s=10.0))
    ctl.adopt(0.0, in_force)
    for w in engine.workers:
        if w.switching:
            engine.worker_ready(0.0, w.wid)
    return ctl


def test_while_demand_rises_a_change_that_loads_models_keeps_the_capacity(small_profile):
    """A better plan that loads a model but carries less than the plan in force is not
    adopted while demand rises; once demand stops rising it is."""
    from hadis.core.plan import PlanRequest
    from hadis.planner import DiffServePolicy

    fast = DiffServePolicy(pair=("m0", "m1")).plan(PlanRequest(small_profile, 8, 30.0, 2.0))
    slower = DiffServePolicy(pair=("m1", "m2")).plan(PlanRequest(small_profile, 8, 30.0, 0.3))
    assert slower.carried_qps < fast.carried_qps
    assert small_profile.metric.better(slower.quality, fast.quality)
    ctl = _loaded(small_profile, fast, FixedPolicy(slower))
    ctl.reason = "period"
    ctl.decide(PlanRequest(small_profile, 8, 30.0, 0.1))
    rising = ctl.decide(PlanRequest(small_profile, 8, 30.0, 0.2))
    assert rising is fast
    steady = ctl.decide(PlanRequest(small_profile, 8, 30.0, 0.2))
    assert steady is slower


def test_decide_reads_the_engine_state_that_due_took(demo_profile):
    """The server runs `decide` off the driver's thread: it must use the workers' weights
    and queue ages that `due` read on the driver's thread, never the engine's live state."""
    from hadis.core.plan import PlanRequest
    from hadis.planner import DiffServePolicy

    engine = Engine(
        demo_profile,
        2,
        EngineConfig(slo_s=5.0),
        TableRouter([0.0] * 10),
        TableDiscriminator([1.0] * 10),
        MetricsRecorder(),
    )
    ctl = Controller(engine, HadisPolicy(), 2, ControllerConfig(period_s=50.0, check_s=10.0))
    ctl.adopt(0.0, DiffServePolicy().plan(PlanRequest(demo_profile, 2, 5.0, 6.0)))
    for w in engine.workers:
        if w.switching:
            engine.worker_ready(0.0, w.wid)
    for _ in range(300):
        ctl.observe_arrival(1.0)
    req = ctl.due(50.0)
    assert req is not None

    def live(*_):
        raise AssertionError("decide read the engine's live state")

    engine.held_weights = live  # type: ignore[method-assign]
    engine.oldest_queued_s = live  # type: ignore[method-assign]
    assert ctl.decide(req) is not None


@pytest.mark.parametrize("reason, keeps", [("period", False), ("backlog", True)])
def test_the_plan_in_force_needs_its_margin_on_periodic_replans_only(small_profile, reason, keeps):
    """A periodic re-plan leaves a plan that carries the demand but not demand x
    overprovision; a backlog re-plan, whose demand already includes the last tick's spike,
    judges it at the demand and keeps it."""
    from hadis.core.plan import PlanRequest
    from hadis.planner import DiffServePolicy

    heavy = DiffServePolicy(pair=("m1", "m2")).plan(PlanRequest(small_profile, 8, 30.0, 0.3))
    demand = 0.9 * heavy.carried_qps
    req = PlanRequest(small_profile, 8, 30.0, demand, overprovision=1.6)
    fast = DiffServePolicy(pair=("m0", "m1")).plan(req)
    assert small_profile.metric.better(heavy.quality, fast.quality) and fast.feasible
    ctl = _loaded(small_profile, heavy, FixedPolicy(fast))
    ctl.decide(dataclasses.replace(req, demand_qps=2 * demand))  # demand is not rising next
    ctl.reason = reason
    assert (ctl.decide(req) is heavy) == keeps


@pytest.mark.parametrize("tick_qps, absorbed", [(1.2, True), (1.5, True), (2.0, False)])
def test_a_backlog_replan_plans_below_a_spike_its_queues_absorb(small_profile, tick_qps, absorbed):
    """Quick switches, a tick at `tick_qps` after a plan made for half of it: the backlog
    re-plan plans for the lowest demand whose plan (and what the controller then adopts)
    drains that rate kept up for two SLOs within the SLO; when none below it does, for the
    tick's rate as before. A periodic re-plan plans for the demand it is given."""
    from hadis.core.plan import PlanRequest
    from hadis.engine.controller import SPIKE_SLOS, Snapshot
    from hadis.planner.burst import weathers

    policy = HadisPolicy()
    req = PlanRequest(small_profile, 8, 30.0, tick_qps)
    in_force = policy.plan(dataclasses.replace(req, demand_qps=tick_qps / 2))
    spike = [tick_qps] * round(SPIKE_SLOS * 30.0 / 10.0)

    def replan(reason: str):
        ctl = _loaded(small_profile, in_force, policy)
        ctl.reason = reason
        ctl._state = Snapshot(
            ctl.engine.held_weights(), {}, estimate_qps=tick_qps, ewma_qps=tick_qps / 2,
            tick_qps=tick_qps,
        )  # fmt: skip
        return ctl.decide(dataclasses.replace(req, previous=in_force))

    backlog = replan("backlog")
    assert (backlog.demand_qps < tick_qps) == absorbed
    assert weathers(backlog, req, spike, 10.0)
    if absorbed:  # a plan with less capacity than the policy's for the spike's rate
        assert backlog.carried_qps < policy.plan(req).carried_qps
    assert replan("period").demand_qps == pytest.approx(tick_qps)


def test_the_plan_in_force_is_judged_by_the_level_of_demand_not_by_a_burst_tick(
    small_profile,
):
    """With slow switches the plan in force needs no margin while it carries the demand
    and weathers the burst window. A burst in the last tick raises the estimate above the
    plan's capacity but not the median tick rate of the last period: the plan keeps its
    standing. A ramp (every tick of the period above the capacity) costs it, as before."""
    from hadis.core.plan import PlanRequest
    from hadis.engine.controller import Snapshot
    from hadis.planner import DiffServePolicy

    slo = 60.0  # room for a burst tick's queue on top of the plan's batches
    plan = DiffServePolicy(pair=("m1", "m2")).plan(PlanRequest(small_profile, 8, slo, 0.3))
    cap = plan.carried_qps
    ctl = _loaded(small_profile, plan, FixedPolicy(plan))
    req = PlanRequest(small_profile, 8, slo, 0.5 * cap, overprovision=1.6)

    def judged_at(rates: list[float]) -> float:
        state = Snapshot(ctl.engine.held_weights(), {}, rates=tuple(rates), estimate_qps=1.05 * cap)
        return ctl._in_force_qps(req, plan, state)

    calm = [0.5 * cap] * 10
    assert judged_at(calm[:-1] + [1.3 * cap]) == pytest.approx(req.demand_qps)
    assert judged_at(calm[:-5] + [1.05 * cap] * 5) == pytest.approx(1.05 * cap * 1.6)
