"""Planning for bursts when model switches are slow: the replay of recent arrival rates
(planner/burst.py), the switch risk counted as the demand a change cannot serve while it
loads (planner/hysteresis.py), and the controller that uses both."""

import dataclasses

import numpy as np
import pytest

from hadis.core.plan import PlanRequest
from hadis.engine import Controller, ControllerConfig, Engine, EngineConfig, LoadModel
from hadis.planner import HadisPolicy
from hadis.planner.burst import replay_waits_s, weathering_request, weathers
from hadis.planner.hysteresis import shortfall_qps, worth_switching
from hadis.planner.in_place import gpus_by_weights, loads_needed
from hadis.planner.transition import Transition
from hadis.profiles.synthetic import synthetic_pool
from tests.engine_helpers import TableDiscriminator, TableRouter


@pytest.fixture(scope="module")
def r0_profile():
    """Six models, each about half as fast as the one before, discriminator-only rows."""
    return synthetic_pool(6, pair_span=2, r_grid=(0.0,), name="r0")


def test_the_replay_is_a_fifo_queue_tick_by_tick(paper_profile):
    plan = HadisPolicy().plan(PlanRequest(paper_profile, 16, 60.0, 3.0))
    rates = np.random.default_rng(0).gamma(0.5, 2.0 * plan.carried_qps, 200)
    waits = replay_waits_s(plan, rates, 10.0)
    for m, load in plan.load_qps.items():
        queue, worst = 0.0, 0.0
        for r in rates:  # queued work after each tick: what came minus what was served
            queue = max(0.0, queue + (r * load / plan.demand_qps - plan.capacity_qps[m]) * 10.0)
            worst = max(worst, queue / plan.capacity_qps[m])
        assert waits[m] == pytest.approx(worst)
    assert max(waits.values()) > 0  # the rates did overload it at times


def test_a_short_spike_is_absorbed_and_a_sustained_burst_is_not(paper_profile):
    req = PlanRequest(paper_profile, 16, 60.0, 3.0)
    plan = HadisPolicy().plan(req)
    spike = 1.3 * plan.carried_qps
    calm = [0.5 * plan.carried_qps] * 30
    assert weathers(plan, req, calm, 10.0)
    assert weathers(plan, req, [*calm, spike, *calm], 10.0)  # 10 s: its queue drains
    assert not weathers(plan, req, [*calm, *[spike] * 30, *calm], 10.0)  # 300 s


def test_the_request_is_raised_only_when_its_plan_would_not_weather_the_bursts(r0_profile):
    policy = HadisPolicy()
    calm, burst = 0.5, 4.6
    rates = ([calm] * 9 + [burst] * 3) * 5  # 30 s bursts every two minutes
    req = PlanRequest(r0_profile, 16, 60.0, 1.0, overprovision=1.6)
    assert not weathers(policy.plan(req), req, rates, 10.0)
    found, plan = weathering_request(policy.plan, req, rates, 10.0)
    assert plan is not None and weathers(plan, found, rates, 10.0)
    assert req.demand_qps < found.demand_qps <= burst
    assert plan.carried_qps < burst  # the queues absorb part of each burst
    # bisection: a demand a step lower (1/32 of the span) does not weather them
    lower = dataclasses.replace(req, demand_qps=found.demand_qps - (burst - 1.0) / 32)
    assert not weathers(policy.plan(lower), lower, rates, 10.0)
    # calm rates: the request as it is
    same, _ = weathering_request(policy.plan, req, [calm] * 60, 10.0)
    assert same.demand_qps == req.demand_qps

    # bursts no plan can weather (far beyond the pool's capacity): the request as it is
    flood = [calm] * 30 + [100.0] * 30
    kept, plan = weathering_request(policy.plan, req, flood, 10.0)
    assert kept.demand_qps == req.demand_qps and plan.gpus == policy.plan(req).gpus

    def broken(r):
        raise RuntimeError("solver crashed")

    assert weathering_request(broken, req, rates, 10.0)[1] is None


def test_a_change_risks_what_its_kept_workers_cannot_serve_while_the_rest_load(r0_profile):
    """From every worker on s02 (twice the capacity the demand needs), with 30 s loads:
    moving two workers to s03 leaves the light model's capacity in place and pays for its
    small gain; moving all sixteen to s03 serves nothing for the load, and its larger gain
    does not pay."""
    policy = HadisPolicy()
    fast = policy.plan(PlanRequest(r0_profile, 16, 60.0, 6.0, overprovision=1.6))
    assert dict(fast.gpus) == {"s02": 16}
    req = PlanRequest(r0_profile, 16, 60.0, 2.88, overprovision=1.6)
    ranked = policy.ranked_plans(req, gpus_by_weights(r0_profile, fast.gpus), 32)
    step = next(p for p in ranked if dict(p.gpus) == {"s02": 14, "s03": 2})
    full = next(p for p in ranked if dict(p.gpus) == {"s03": 16})
    # the step's shortfall: escalations to s03, which nobody serves until it is loaded
    assert shortfall_qps(fast, step, req, 50.0) == pytest.approx(req.target_qps * step.d)
    assert shortfall_qps(fast, full, req, 50.0) == pytest.approx(req.target_qps)
    kw = dict(switch_s=30.0, horizon_s=50.0, shortfall=True)
    assert worth_switching(fast, step, req, **kw)
    assert not worth_switching(fast, full, req, **kw)
    # counting all the capacity the moving workers had (the rule for quick switches),
    # not even the step pays: the fast plan would stay for good
    assert not worth_switching(fast, step, req, switch_s=30.0, horizon_s=50.0)


def test_a_plan_that_loads_is_judged_at_the_burst_and_the_plan_in_force_at_its_demand(
    r0_profile,
):
    policy = HadisPolicy()
    req = PlanRequest(r0_profile, 16, 60.0, 2.0, overprovision=1.6)
    now = policy.plan(dataclasses.replace(req, demand_qps=4.0))
    held = gpus_by_weights(r0_profile, now.gpus)
    calm = Transition(held, 30.0, 50.0)
    ranked = policy.ranked_plans(req, held, 32)
    new = next(p for p in ranked if loads_needed(held, p, r0_profile) and calm.keeps_slo(p, req))
    assert not dataclasses.replace(calm, burst_qps=4.5).keeps_slo(new, req)
    # the plan in force loads nothing: the burst does not apply to it
    assert dataclasses.replace(calm, burst_qps=4.5).keeps_slo(now, req)
    # judged at the target unless told
    over = dataclasses.replace(req, demand_qps=0.99 * now.carried_qps)
    assert not calm.keeps_slo(now, over, in_force=now)
    told = dataclasses.replace(calm, in_force_qps=over.demand_qps)
    assert told.keeps_slo(now, over, in_force=now)


def controller(profile, switch_s):
    engine = Engine(profile, 16, EngineConfig(60.0, switch_delay_s=switch_s),
                    TableRouter([0.0] * 50000), TableDiscriminator([1.0] * 50000))  # fmt: skip
    return Controller(engine, HadisPolicy(), 16, ControllerConfig(initial_demand_qps=1.0))


@pytest.mark.parametrize("switch_s", [3.0, 30.0])
def test_with_slow_switches_the_plan_weathers_the_bursts_of_the_window(r0_profile, switch_s):
    """Calm at 0.5 q/s with a 20 s burst at 4.6 q/s every five minutes (observed, not
    served; too rare for the burst quantile, 0.9 of the tick rates, to see): with 30 s
    loads the plans made in the calm weather the bursts seen (without the replay they do
    not); with 3 s loads the controller follows bursts instead and plans for the calm."""
    ctl = controller(r0_profile, switch_s)

    def loaded(commands, now):  # loads end at once: the test is about plans, not serving
        for c in commands:
            if isinstance(c, LoadModel):
                ctl.engine.worker_ready(now, c.worker)

    loaded(ctl.start(0.0), 0.0)
    rates = ([0.5] * 28 + [4.6] * 2) * 3 + [0.5] * 6
    plans = []
    for i, rate in enumerate(rates):
        t = 10.0 * i
        for k in range(round(rate * 10)):
            ctl.observe_arrival(t + k / rate)
        before = ctl.plan
        loaded(ctl.tick(t + 10.0), t + 10.0)
        if ctl._since == t + 10.0:  # a re-plan
            plans.append((i, ctl.plan, before))
    i, last, _ = plans[-1]
    assert rates[i] == 0.5 and rates[i - 1] == 0.5  # made in a calm spell
    burst = PlanRequest(r0_profile, 16, 60.0, 1.0)
    assert weathers(last, burst, rates[: i + 1], 10.0) == (switch_s > 10.0)


def test_the_plan_in_force_needs_no_margin_while_it_weathers_the_bursts(r0_profile):
    """After a burst the demand estimate still carries it; judged at the margin on it, the
    plan in force fails and is left for faster, worse models. It is judged at the
    request's demand when it weathers the window's tick rates and a period more at that
    demand, and at the margin when it does not (a burst it cannot carry, a demand far
    above its capacity) or when it does not carry the demand estimate."""
    from hadis.engine.controller import Snapshot

    ctl = controller(r0_profile, 30.0)
    now = HadisPolicy().plan(PlanRequest(r0_profile, 16, 60.0, 3.0))
    cap = now.carried_qps
    req = PlanRequest(r0_profile, 16, 60.0, 0.6 * cap, overprovision=ctl.overprovision)
    estimate = 0.9 * cap  # raised by the burst that just ended
    margin = estimate * req.overprovision
    assert margin > cap  # at the margin, the plan in force would not carry it

    def judged(rates, demand=req.demand_qps, estimate=estimate):
        state = Snapshot(gpus_by_weights(r0_profile, now.gpus), {}, tuple(rates), 0.0, estimate)
        return ctl._in_force_qps(dataclasses.replace(req, demand_qps=demand), now, state)

    calm = [0.5 * cap] * 100
    assert judged([*calm, *[1.2 * cap] * 2, *calm[:5]]) == req.demand_qps  # 20 s burst
    assert judged([*calm, *[1.2 * cap] * 30, *calm[:5]]) == pytest.approx(margin)  # 300 s
    # a period at a demand above its capacity: weathered while its queue keeps the SLO
    assert judged(calm, demand=1.1 * cap) == pytest.approx(1.1 * cap)
    assert judged(calm, demand=1.3 * cap) == pytest.approx(margin)  # its queue does not
    # ... but not when the steady demand (the estimate, and the last period's tick rates)
    # is above its capacity: its queue would grow period after period until a forced
    # change came too late
    over = 1.05 * cap
    ramp = [*calm, *[over] * 5]
    assert judged(ramp, demand=1.1 * cap, estimate=over) == pytest.approx(over * ctl.overprovision)
