import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hadis.errors import HadisError, PlanningError
from hadis.planner import HadisPolicy, PlanRequest, get_policy, plan, policy_names
from hadis.planner.baselines import _single_model_plan
from hadis.planner.candidates import build_candidates
from hadis.planner.exhaustive import solve_exhaustive
from tests.conftest import make_profile


def check_plan_invariants(req: PlanRequest, p) -> None:
    assert sum(p.gpus.values()) <= req.gpus
    assert all(g >= 0 for g in p.gpus.values())
    if p.feasible:
        for m, load in p.load_qps.items():
            assert p.capacity_qps[m] >= load * req.overprovision - 1e-9
        for path, latency in p.path_latency_s.items():
            assert latency <= req.slo_s + 1e-9, path


@st.composite
def instances(draw):
    n = draw(st.integers(2, 3))
    lat = sorted(draw(st.lists(st.floats(0.2, 20.0), min_size=n, max_size=n, unique=True)))
    base = sorted(draw(st.lists(st.floats(15.0, 35.0), min_size=n, max_size=n)), reverse=True)
    noise = draw(st.lists(st.floats(-1.0, 1.0), min_size=200, max_size=200))
    it = iter(noise)

    def row_quality(i, j, r, d):
        f = r + (1 - r) * d
        return round(base[i] + (base[j] - base[i]) * f + next(it), 2)

    profile = make_profile(lat, base, row_quality, max_batch=draw(st.sampled_from([1, 4, 32])))
    gpus = draw(st.integers(1, 8))
    slo = draw(st.floats(lat[0], 3 * lat[-1] + 1))
    demand = draw(st.floats(0.0, 3.0 * gpus / lat[0]))
    return profile, gpus, slo, demand


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(), st.sampled_from([0.0, 0.5, 1.0]))
def test_milp_matches_exhaustive_search(inst, batch_wait):
    profile, gpus, slo, demand = inst
    req = PlanRequest(profile, gpus, slo, demand, batch_wait=batch_wait)
    brute = solve_exhaustive(req, build_candidates(profile, profile.configs))
    for solver in ("milp", "enumerate"):
        p = HadisPolicy(solver=solver).plan(req)
        check_plan_invariants(req, p)
        if brute is None:
            assert not p.feasible
        else:
            assert p.feasible
            assert p.quality == pytest.approx(brute.candidate.quality)


@settings(max_examples=60, deadline=None)
@given(instances(), st.floats(1.01, 4.0))
def test_quality_never_improves_when_demand_rises(inst, factor):
    profile, gpus, slo, demand = inst
    policy = HadisPolicy()
    low = policy.plan(PlanRequest(profile, gpus, slo, demand))
    high = policy.plan(PlanRequest(profile, gpus, slo, demand * factor + 0.01))
    check_plan_invariants(PlanRequest(profile, gpus, slo, demand), low)
    assert high.quality >= low.quality - 1e-9  # FID: lower is better


def test_paper_profile_plan_uses_cascade_and_covers_demand(paper_profile):
    req = PlanRequest(paper_profile, 16, 60.0, 3.5)
    p = plan(req)
    check_plan_invariants(req, p)
    assert p.feasible and p.heavy is not None
    # better than any single model that carries 3.5 q/s on 16 GPUs (SD3.5-Large-Turbo: 25.23)
    assert p.quality < 25.23
    assert sum(p.gpus.values()) == 16  # spare GPUs are spread, not left idle


def test_router_bypass_does_not_load_light(paper_profile):
    req = PlanRequest(paper_profile, 16, 60.0, 1.0)
    p = plan(req)
    assert p.load_qps[p.light] == pytest.approx((1 - p.r) * 1.0)
    if p.heavy:
        assert p.load_qps[p.heavy] == pytest.approx(p.f * 1.0)


def test_joint_and_per_pair_and_pareto_tables_agree_where_expected(paper_profile):
    for demand in (0.5, 2.0, 4.0, 6.4):
        req = PlanRequest(paper_profile, 16, 60.0, demand)
        joint = HadisPolicy().plan(req)
        per_pair = HadisPolicy(per_pair=True).plan(req)
        assert joint.quality == pytest.approx(per_pair.quality)
        pareto = HadisPolicy(table="pareto-adjacent").plan(req)
        assert joint.quality <= pareto.quality + 1e-9  # full table is a superset


def test_infeasible_demand_falls_back_to_throughput(paper_profile):
    req = PlanRequest(paper_profile, 4, 60.0, 100.0)
    p = plan(req)
    assert not p.feasible
    assert p.pair == ("sdxl-lightning",)
    assert p.gpus == {"sdxl-lightning": 4}
    assert p.shortfall_qps == pytest.approx(100.0 - p.capacity_qps["sdxl-lightning"])
    assert p.shortfall_qps > 0


def test_queue_delay_pushes_plan_off_a_backlogged_model(paper_profile):
    calm = plan(PlanRequest(paper_profile, 16, 60.0, 1.0))
    assert "sd35-large" in calm.gpus
    # 40 queued at 1 q/s on the heavy model: Little's law adds 48 s, so 27 s + 48 s > 60 s
    busy = plan(
        PlanRequest(
            paper_profile,
            16,
            60.0,
            1.0,
            queue={"sd35-large": 40},
            arrival_qps={"sd35-large": 1.0},
        )
    )
    assert "sd35-large" not in busy.gpus
    for latency in busy.path_latency_s.values():
        assert latency <= 60.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gpus": 0}, "gpus must be a positive integer"),
        ({"demand_qps": -1.0}, "demand must be"),
        ({"demand_qps": math.nan}, "demand must be"),
        ({"slo_s": 0.1}, "below every model's latency"),
        ({"slo_s": -5.0}, "slo must be a positive"),
    ],
)
def test_invalid_requests(paper_profile, kwargs, match):
    args = {"gpus": 16, "slo_s": 60.0, "demand_qps": 1.0} | kwargs
    with pytest.raises(PlanningError, match=match):
        PlanRequest(paper_profile, **args)


def test_clipper_baselines(paper_profile):
    req = PlanRequest(paper_profile, 16, 60.0, 3.0)
    light = plan(req, "clipper-light")
    assert light.gpus == {"sdxl-lightning": 16} and light.batch == {"sdxl-lightning": 32}
    heavy = plan(req, "clipper-heavy")
    assert heavy.gpus == {"sd35-large": 16}
    # half a batch's wait for the one in progress: 1.5 x 0.9*2*27 = 73 s > 60 s
    assert heavy.batch == {"sd35-large": 1}
    assert heavy.admission_factor == 1.0
    assert not heavy.feasible  # 16 GPUs x 1 / 27 s = 0.59 q/s < 3 q/s
    paper_rule = plan(PlanRequest(paper_profile, 16, 60.0, 3.0, batch_wait=0.0), "clipper-heavy")
    assert paper_rule.batch == {"sd35-large": 2}  # 0.9*4*27 = 97 s > 60 s


def test_diffserve_is_pinned_to_pair_and_router_off(paper_profile):
    for demand in (0.5, 2.0, 5.0):
        p = plan(PlanRequest(paper_profile, 16, 60.0, demand), "diffserve")
        assert p.light == "sd35-large-turbo"
        assert p.r == 0
        assert p.heavy in ("sd35-large", None)


def test_diffserve_maximises_quality_not_threshold(paper_profile):
    # at low demand the best (1,3) cascade is not the largest d that fits
    p = plan(PlanRequest(paper_profile, 16, 60.0, 0.3), "diffserve")
    rows = {
        c.d: c.quality
        for c in paper_profile.configs
        if c.pair == ("sd35-large-turbo", "sd35-large") and c.r == 0
    }
    assert p.quality == min(rows.values())


def test_infaas_steps_between_variants(paper_profile):
    policy = get_policy("infaas-acc")
    first = policy.plan(PlanRequest(paper_profile, 16, 60.0, 0.5))
    assert first.pair == ("sd35-large",)  # best quality that keeps up at 0.5 q/s
    # demand jumps: the current variant can no longer keep up -> one step down
    down = policy.plan(PlanRequest(paper_profile, 16, 60.0, 3.0, previous=first))
    assert down.pair == ("sd35-medium",)
    down2 = policy.plan(PlanRequest(paper_profile, 16, 60.0, 3.0, previous=down))
    assert down2.pair == ("sd35-large-turbo",)
    # demand drops again: one step up per re-plan
    up = policy.plan(PlanRequest(paper_profile, 16, 60.0, 0.5, previous=down2))
    assert up.pair == ("sd35-medium",)


def test_proteus_splits_without_cascade(paper_profile):
    req = PlanRequest(paper_profile, 16, 60.0, 3.5)
    p = plan(req, "proteus")
    assert p.split is not None and sum(p.split.values()) == pytest.approx(1.0)
    assert len(p.split) >= 2
    for m, share in p.split.items():
        assert p.capacity_qps[m] >= 1.25 * 3.5 * share - 1e-9
    assert p.quality == pytest.approx(
        sum(s * paper_profile.model(m).quality_alone for m, s in p.split.items())
    )


def test_unknown_policy_lists_valid_names():
    with pytest.raises(ValueError, match="valid: hadis, diffserve"):
        get_policy("nope")


def test_every_baseline_of_the_paper_is_registered():
    assert set(policy_names()) >= {
        "hadis", "diffserve", "clipper-light", "clipper-heavy", "infaas-acc", "proteus"
    }  # fmt: skip


@pytest.mark.parametrize("name", policy_names())
@pytest.mark.parametrize("demand", [0.0, 1.0, 6.4, 40.0])
def test_every_policy_contract(paper_profile, name, demand):
    req = PlanRequest(paper_profile, 16, 60.0, demand)
    p = get_policy(name).plan(req)
    assert p.policy == name
    assert sum(p.gpus.values()) <= 16
    assert set(p.batch) == set(p.gpus)
    assert all(b in (1, 2, 4, 8, 16, 32) for b in p.batch.values())
    for m in p.gpus:
        paper_profile.model(m)
    d = p.to_dict()
    for key in ("pair", "r", "d", "gpus", "batch", "quality", "feasible", "solve_ms"):
        assert key in d


@settings(max_examples=40, deadline=None)
@given(
    st.integers(3, 6),
    st.integers(1, 2),
    st.integers(1, 24),
    st.floats(0.05, 1.5),
    st.floats(20.0, 120.0),
    st.integers(0, 3),
)
def test_enumeration_matches_brute_force_on_synthetic_pools(n, span, gpus, load, slo, seed):
    """The fleet benchmark's pool family (hadis.profiles.synthetic), small enough for brute
    force: exact enumeration finds the best feasible quality, batch sizes measured."""
    from hadis.profiles.synthetic import synthetic_pool

    profile = synthetic_pool(n, pair_span=span, grid=(0.0, 0.5, 1.0), seed=seed)
    fastest = profile.models[0]
    demand = load * gpus * fastest.capacity_qps(1)
    try:
        req = PlanRequest(profile, gpus, slo, demand)
    except PlanningError:
        return
    brute = solve_exhaustive(req, build_candidates(profile, profile.configs))
    p = HadisPolicy().plan(req)
    check_plan_invariants(req, p)
    if brute is None:
        assert not p.feasible
    else:
        assert p.feasible and p.quality == pytest.approx(brute.candidate.quality)


def test_a_policy_is_one_class_with_typed_options(paper_profile):
    """Registering sets the name; get_policy checks the options against the dataclass;
    options_for hands each policy the options it declares."""
    from dataclasses import dataclass

    from hadis.planner import options_for, policy_options, register
    from hadis.planner.registry import _REGISTRY

    @dataclass(frozen=True)
    class FixedOptions:
        model: str = "sd35-large"

    @register("test-fixed", options=FixedOptions)
    class Fixed:
        name: str

        def __init__(self, model: str) -> None:
            self.model = model

        def plan(self, req):
            return _single_model_plan(req, self.name, self.model, 1, 0.0)

    try:
        assert Fixed.name == "test-fixed" and policy_options("test-fixed") is FixedOptions
        assert get_policy("test-fixed").model == "sd35-large"
        assert get_policy("test-fixed", model="sdxl-lightning").model == "sdxl-lightning"
        with pytest.raises(HadisError, match="has no option 'table'; its options: model"):
            get_policy("test-fixed", table="full")
        with pytest.raises(HadisError, match="has no option 'solver'; its options: none"):
            get_policy("clipper-light", solver="milp")
        mixed = {"table": "pareto", "solver": "milp", "model": "sd35-medium"}
        assert options_for("test-fixed", mixed) == {"model": "sd35-medium"}
        assert options_for("diffserve", mixed) == {"solver": "milp"}
        assert options_for("hadis", mixed) == {"table": "pareto", "solver": "milp"}
        assert options_for("proteus", mixed) == {}
        plan = get_policy("test-fixed").plan(PlanRequest(paper_profile, 4, 60.0, 1.0))
        assert plan.policy == "test-fixed" and plan.gpus == {"sd35-large": 4}
    finally:
        _REGISTRY.pop("test-fixed", None)


def test_ranked_plans_start_with_the_best_and_keep_the_loaded_workers(paper_profile):
    """The policy's ranked plans (for the controller's switch-aware choice): feasible, best
    quality first (the first as good as plan()'s), each on the workers as they are: when
    they hold the best plan's weights, the first plan loads nothing."""
    from hadis.planner.hysteresis import loads_needed
    from hadis.planner.in_place import gpus_by_weights

    policy = HadisPolicy()
    req = PlanRequest(paper_profile, 16, 60.0, 4.0)
    best = policy.plan(req)
    held = gpus_by_weights(paper_profile, best.gpus)
    ranked = policy.ranked_plans(req, held, 8)
    assert len(ranked) == 8
    metric = paper_profile.metric
    costs = [metric.cost(p.quality) for p in ranked]
    assert costs == sorted(costs)
    assert costs[0] == pytest.approx(metric.cost(best.quality))
    assert loads_needed(held, ranked[0], paper_profile) == 0
    assert all(p.feasible and sum(p.gpus.values()) == 16 for p in ranked)
    assert len({(p.pair, p.r, p.d) for p in ranked}) > 1
