"""The fluid model of a plan change (planner/transition.py) and the choice built on it."""

import dataclasses

import pytest

from hadis.core.plan import PlanRequest
from hadis.planner import DiffServePolicy, HadisPolicy
from hadis.planner.in_place import gpus_by_weights
from hadis.planner.transition import FluidStage, Transition


def stage(**kw):
    base = dict(
        queued=0.0,
        rate=1.0,
        kept_qps=2.0,
        full_qps=2.0,
        switch_s=0.0,
        batch_s=4.0,
        batch_factor=1.5,
    )
    return FluidStage(**{**base, **kw})


def test_a_stage_without_switch_or_backlog_is_the_planned_batch():
    s = stage()
    assert [s.latency_s(t) for t in (0.0, 10.0, 50.0)] == pytest.approx([6.0] * 3)
    assert s.oldest_s() == 0.0


def test_a_query_arriving_during_a_load_waits_for_it_then_runs_on_fresh_workers():
    s = stage(kept_qps=0.0, switch_s=30.0)
    # at 0: the whole load, then its batch (no batch in progress on a freshly loaded worker)
    assert s.latency_s(0.0) == pytest.approx(30.0 + 4.0)
    # at the end of the load: 30 queries ahead at 2/s, then a batch in progress and its own
    assert s.latency_s(30.0) == pytest.approx(30.0 / 2.0 + 6.0)
    # kept workers serve meanwhile: with capacity to spare nobody waits for the load
    assert stage(kept_qps=2.0, full_qps=4.0, switch_s=30.0).latency_s(0.0) == pytest.approx(6.0)


def test_an_overloaded_stage_gets_later_and_the_oldest_query_counts_its_wait():
    s = stage(rate=3.0, queued=10.0, head_age_s=20.0)
    assert s.latency_s(50.0) > s.latency_s(10.0) > s.latency_s(0.0)
    assert s.latency_s(0.0) == pytest.approx(10.0 / 2.0 + 6.0)
    assert s.oldest_s() == pytest.approx(20.0 + 6.0)


def test_a_plan_on_loaded_weights_with_no_queue_is_as_planned(paper_profile):
    req = PlanRequest(paper_profile, 16, 60.0, 3.0)
    plan = HadisPolicy().plan(req)
    held = gpus_by_weights(paper_profile, plan.gpus)
    worst = Transition(held, 30.0, 50.0).worst_path_s(plan, req)
    assert worst == pytest.approx(max(plan.path_latency_s.values()))


def test_loading_from_nothing_costs_the_load_and_more_loads_never_help(paper_profile):
    req = PlanRequest(paper_profile, 16, 60.0, 3.0)
    plan = HadisPolicy().plan(req)
    held = gpus_by_weights(paper_profile, plan.gpus)
    steady = Transition(held, 30.0, 50.0).worst_path_s(plan, req)
    cold = [Transition({}, s, 50.0).worst_path_s(plan, req) for s in (3.0, 10.0, 30.0)]
    assert steady < cold[0] <= cold[1] <= cold[2]
    assert cold[2] >= 30.0


def test_the_light_model_covers_a_loading_heavy_one_when_waiting_would_be_late(small_profile):
    """A cascade whose heavy model loads for longer than the SLO allows: its escalations are
    answered by the light model meanwhile (the engine's rule), so the path does not wait."""
    req = PlanRequest(small_profile, 8, 30.0, 0.5)
    plan = DiffServePolicy(pair=("m0", "m2")).plan(req)
    assert plan.d > 0 and plan.gpus.get("m2")
    light_held = {small_profile.model("m0").weights: plan.gpus["m0"]}
    covered = Transition(light_held, 40.0, 50.0).worst_path_s(plan, req)
    assert covered < 40.0  # nobody waits for the 40 s load
    nothing = Transition({}, 40.0, 50.0).worst_path_s(plan, req)
    assert nothing > 40.0  # with nothing loaded every query waits for it


def test_choose_takes_the_best_plan_that_stays_within_the_slo(small_profile):
    req = PlanRequest(small_profile, 8, 30.0, 0.5)
    policy = HadisPolicy()
    best = policy.plan(req)  # every GPU on m2 (10 s per image)
    held = {small_profile.model("m1").weights: 8}  # the workers hold m1
    on_held = policy.plan_within(req, best, held)
    assert on_held is not None and set(on_held.gpus) == {"m1"}
    slow = Transition(held, 10.0, 50.0)
    assert slow.worst_path_s(on_held, req) <= req.slo_s
    assert slow.worst_path_s(best, req) > req.slo_s  # its queries wait for m2's load
    assert slow.choose([best, on_held], req) is on_held
    # with a quick load the best plan keeps the SLO, and is taken
    assert Transition(held, 1.0, 50.0).choose([best, on_held], req) is best
    # when no option keeps the SLO, the one that makes the fewest late
    tight = dataclasses.replace(req, slo_s=3.5, queue={"m1": 20})
    aged = Transition(held, 10.0, 50.0, ages={"m1": 2.0})
    chosen = aged.choose([best, on_held], tight)
    seen = [aged.outlook(p, tight) for p in (best, on_held)]
    assert all(o.worst_s > tight.slo_s for o in seen)  # neither keeps the SLO
    assert 0 < seen[1].late < seen[0].late and chosen is on_held


def test_the_plan_in_force_is_kept_only_while_it_carries_the_planning_margin(paper_profile):
    """The plan in force is judged at demand x overprovision: one that carries the demand
    but not the margin gives way to a safe alternative."""
    plan_at = HadisPolicy().plan(PlanRequest(paper_profile, 16, 60.0, 3.0))
    cap = min(c / plan_at.load_qps[m] for m, c in plan_at.capacity_qps.items()) * 3.0
    req = PlanRequest(paper_profile, 16, 60.0, 0.95 * cap, overprovision=1.6)
    held = gpus_by_weights(paper_profile, plan_at.gpus)
    adopt = Transition(held, 30.0, 50.0)
    assert adopt.worst_path_s(plan_at, req) <= req.slo_s  # it carries the demand
    safe = HadisPolicy().plan(dataclasses.replace(req, overprovision=2.0))
    assert adopt.worst_path_s(safe, req) <= req.slo_s
    assert adopt.choose([plan_at, safe], req, in_force=plan_at) is safe
    assert adopt.choose([plan_at, safe], req) is plan_at


def test_a_plan_that_lost_its_margin_may_be_left_whatever_the_switch_costs(paper_profile):
    """The hysteresis lets a change through as soon as the plan in force no longer carries
    demand x overprovision (it used to wait until it no longer carried the demand itself,
    and then the change came too late to keep the SLO during 30 s loads)."""
    from hadis.planner.hysteresis import carries, worth_switching

    plan_at = HadisPolicy().plan(PlanRequest(paper_profile, 16, 60.0, 3.0))
    carried = plan_at.carried_qps
    within_margin = PlanRequest(paper_profile, 16, 60.0, carried / 2.0, overprovision=1.6)
    margin_lost = PlanRequest(paper_profile, 16, 60.0, 0.9 * carried, overprovision=1.6)
    assert carries(plan_at, within_margin, 50.0)
    assert not carries(plan_at, margin_lost, 50.0)
    worse = HadisPolicy().plan(dataclasses.replace(margin_lost, overprovision=3.0))
    assert paper_profile.metric.better(plan_at.quality, worse.quality)  # a change for worse
    kw = dict(switch_s=30.0, horizon_s=50.0)
    assert worth_switching(plan_at, worse, margin_lost, **kw)
    assert not worth_switching(plan_at, worse, within_margin, **kw)


def test_when_no_option_keeps_the_slo_one_that_carries_the_demand_goes_first():
    """Over one horizon, loading every worker can look as late as staying overloaded; but
    a plan that does not carry the demand stays late for as long as it is kept."""
    from hadis.profiles.synthetic import synthetic_pool

    profile = synthetic_pool(6, pair_span=2, r_grid=(0.0,), name="r0")
    policy = HadisPolicy()
    now = policy.plan(PlanRequest(profile, 16, 60.0, 0.2))
    req = PlanRequest(profile, 16, 60.0, 2.0, queue={m: 20 for m in now.gpus})
    big = policy.plan(req)
    t = Transition(gpus_by_weights(profile, now.gpus), 30.0, 50.0)
    assert not t.keeps_slo(now, req) and not t.keeps_slo(big, req)
    assert now.carried_qps < req.demand_qps <= big.carried_qps
    assert t.outlook(now, req).late < t.outlook(big, req).late  # staying looks less late
    assert t.choose([now, big], req) is big
    # when neither carries the demand, the fewest late decides
    above = dataclasses.replace(req, demand_qps=1.2 * big.carried_qps)
    late = {id(p): t.outlook(p, above).late for p in (now, big)}
    fewest = min((now, big), key=lambda p: late[id(p)])
    assert late[id(now)] != late[id(big)] and t.choose([now, big], above) is fewest
