"""Admission (serve/service.py `admit`): per path rather than the worst queue, never while
a worker of the plan is free, and every arrival feeds the demand estimate."""

from __future__ import annotations

import asyncio

from hadis.engine import Query
from hadis.planner import PlanRequest, get_policy
from hadis.serve import ServeConfig, build_app
from tests.test_serve_api import run, with_client


def _app(profile, **kw):
    cfg = ServeConfig(**{"workers": 4, "slo_s": 60.0, "time_scale": 0.005, **kw})
    return build_app(
        profile, cfg, executor="profile", router="reference", discriminator="reference"
    )


def _fill(service, model: str, n: int) -> None:
    """n queries waiting in `model`'s queue (as if routed there)."""
    import heapq

    now = service.now()
    for i in range(n):
        q = Query(next(service._ids) + 1_000_000, now, None, "x", i)
        q.model = model
        heapq.heappush(service.engine.queues[model], (now, q.qid, q))


def test_a_full_queue_of_one_model_does_not_block_the_others(paper_profile):
    async def post(c, i):
        return await c.post("/v1/images/generations", json={"prompt": f"p{i}"})

    async def go(c):
        service = app.state.service
        light, heavy = service.plan.pair
        assert service.plan.gpus[light] > 0 and service.plan.gpus[heavy] > 0
        first = []
        for i in range(12):
            # a heavy backlog far longer than the SLO (refilled: the engine sheds the part
            # that cannot make its deadline when it next fills the heavy workers)
            _fill(service, heavy, 5000 - len(service.engine.queues[heavy]))
            first.append(await post(c, i))
        _fill(service, light, 5000)
        second = [await post(c, 100 + i) for i in range(4)]
        return light, heavy, first, second

    # no re-plan during the test (the backlog would trigger one and move the queues)
    app = _app(
        paper_profile,
        initial_demand_qps=3.0,
        max_queue=100_000,
        replan_period_s=1e9,
        check_s=1e9,
    )
    light, heavy, first, second = run(with_client(app, go))
    served = [r for r in first if r.status_code == 200]
    # the light model took them (the discriminator may still have escalated a few)
    assert served and all(r.json()["data"][0]["hadis"]["path"] != "direct-heavy" for r in served)
    for r in first:  # turned away only when routed straight to the heavy model
        if r.status_code != 200:
            assert r.status_code == 429 and heavy in r.json()["error"]["message"]
    assert [r.status_code for r in second] == [429] * 4
    assert int(second[0].headers["retry-after"]) >= 1


def test_an_infeasible_plan_still_serves_what_it_can(paper_profile):
    async def go(c):
        service = app.state.service
        engine, controller = service.engine, service.controller
        req = PlanRequest(paper_profile, 4, 60.0, demand_qps=1000.0)
        plan = get_policy("hadis").plan(req)
        assert not plan.feasible
        service.run(controller.adopt(service.now(), plan))
        while any(w.switching for w in engine.workers):
            await asyncio.sleep(0.01)
        r = await c.post("/v1/images/generations", json={"prompt": "a cat"})
        return r

    app = _app(paper_profile)
    r = run(with_client(app, go))
    assert r.status_code == 200, r.text


def test_rejected_requests_count_toward_demand(paper_profile):
    async def go(c):
        service = app.state.service
        before = service.controller.arrivals
        codes = [
            (await c.post("/v1/images/generations", json={"prompt": f"p{i}"})).status_code
            for i in range(5)
        ]
        return codes, service.controller.arrivals - before

    # a queue of one query: with a heavy backlog put in first, every request is turned away
    app = _app(paper_profile, max_queue=1)

    async def full(c):
        _fill(app.state.service, app.state.service.engine.plan.pair[0], 1)
        return await go(c)

    codes, counted = run(with_client(app, full))
    assert codes == [429] * 5 and counted == 5
