"""The planner's latency promise, checked on random pools, demands and queues (#10).

With `batch_wait = 1` a feasible plan promises the worst case: a query that finds its worker
busy waits for the batch in progress (at most one planned batch), then for its own batch
(a partial batch is never slower than the planned size), plus the queue's Little's-law
delay, at every stage of its path, and all of it within the SLO. The checks recompute
that bound from the plan's batch sizes and the profile, not from the planner's own
numbers.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hadis.core.plan import PlanRequest
from hadis.errors import PlanningError
from hadis.planner import get_policy, options_for, policy_names
from tests.conftest import make_profile


@st.composite
def pools(draw):
    """2-3 models with latencies measured at some of 1, 2, 4, 8 (the rest interpolated or
    extrapolated by the profile's rule) and cascade rows for every pair."""
    n = draw(st.integers(2, 3))
    base = sorted(draw(st.lists(st.floats(0.2, 20.0), min_size=n, max_size=n, unique=True)))
    measured = []
    for lat in base:
        sizes = draw(st.sets(st.sampled_from([2, 4, 8]), max_size=3))
        amortise = draw(st.floats(0.3, 1.0))  # share of a batch's cost per extra image
        batches = {1: lat, **{b: lat * (1 + amortise * (b - 1)) for b in sizes}}
        measured.append({b: round(s, 4) for b, s in batches.items()})
    qualities = [30.0 - 5 * i for i in range(n)]
    profile = make_profile(
        measured,
        qualities,
        lambda i, j, r, d: qualities[i] + (qualities[j] - qualities[i]) * (r + (1 - r) * d),
        max_batch=[draw(st.sampled_from([1, 4, 8, 16])) for _ in range(n)],
    )
    models = profile.models
    gpus = draw(st.integers(1, 8))
    slo = draw(st.floats(base[0], 4 * base[-1] + 1))
    demand = draw(st.floats(0.0, 3.0 * gpus / base[0]))
    queue = {m.name: draw(st.integers(0, 20)) for m in models}
    return profile, gpus, slo, demand, queue


def worst_case_s(req: PlanRequest, plan) -> dict[str, float]:
    """Per path: every stage waits for a full batch in progress, then runs its own."""
    profile = req.profile

    def stage(model: str) -> float:
        m = profile.model(model)
        b = plan.batch[model]
        # partial batches: never slower than the planned size
        assert all(m.batch_latency_s(k) <= m.batch_latency_s(b) + 1e-9 for k in range(1, b))
        return 2 * m.batch_latency_s(b) + req.queue_delay_s(model)

    if plan.split is not None:
        return {m: stage(m) for m, share in plan.split.items() if share > 0}
    paths = {}
    if plan.r < 1:
        paths["light"] = stage(plan.light)
    if plan.heavy is not None and plan.r > 0:
        paths["direct-heavy"] = stage(plan.heavy)
    if plan.heavy is not None and plan.d > 0:
        paths["escalated"] = stage(plan.light) + stage(plan.heavy)
    return paths


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pools())
def test_a_feasible_plan_meets_the_slo_in_the_worst_case(inst):
    profile, gpus, slo, demand, queue = inst
    arrivals = {m: max(demand, 0.1) for m in queue}
    try:
        req = PlanRequest(
            profile, gpus, slo, demand, queue=queue, arrival_qps=arrivals, batch_wait=1.0
        )
    except PlanningError:
        return  # an SLO below every model's latency: refused, nothing to promise
    for name in policy_names():
        plan = get_policy(name, **options_for(name, {})).plan(req)
        if not plan.feasible:
            continue
        for path, seconds in worst_case_s(req, plan).items():
            assert seconds <= slo + 1e-6, (name, path, seconds, slo, plan.batch)
            assert plan.path_latency_s[path] == pytest.approx(seconds), (name, path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pools(), st.sampled_from([0.0, 0.5]))
def test_planned_path_latency_includes_the_batch_wait(inst, wait):
    """At a smaller batch_wait the promise is the planned latency (1 + wait) x batch + queue;
    a plan feasible with the worst case is never infeasible with less."""
    profile, gpus, slo, demand, queue = inst
    try:
        loose = PlanRequest(profile, gpus, slo, demand, queue=queue, batch_wait=wait)
        strict = PlanRequest(profile, gpus, slo, demand, queue=queue, batch_wait=1.0)
    except PlanningError:
        return
    policy = get_policy("hadis")
    a, b = policy.plan(loose), policy.plan(strict)
    if b.feasible:
        assert a.feasible
        assert profile.metric.cost(a.quality) <= profile.metric.cost(b.quality) + 1e-9
    if a.feasible:
        for m, size in a.batch.items():
            stage = (1 + wait) * profile.model(m).batch_latency_s(size) + loose.queue_delay_s(m)
            assert stage <= slo + 1e-6


def test_batch_wait_outside_zero_to_one_is_refused(paper_profile):
    with pytest.raises(PlanningError, match="batch wait"):
        PlanRequest(paper_profile, 16, 60.0, 1.0, batch_wait=1.5)
