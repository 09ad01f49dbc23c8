"""--chaos: faults on purpose, and the server's recovery from them (in-process workers;
tests/test_ray_backend.py rehearses a hang on Ray)."""

from __future__ import annotations

import asyncio

import pytest

from hadis.errors import HadisError
from hadis.serve import ServeConfig, build_app, worker_backend
from hadis.workers.chaos import Chaos
from tests.test_serve_api import run, with_client


def test_parse():
    c = Chaos.parse(["fail:0", "hang:2", "fail-rate:0.25"], seed=3)
    assert c == Chaos(frozenset({0}), frozenset({2}), 0.25, 3)
    assert Chaos.parse([]) is None
    for bad in ("fail", "fail:x", "hang:-1", "fail-rate:1.5", "boom:1"):
        with pytest.raises(HadisError):
            Chaos.parse([bad])


def _app(profile, chaos: list[str], **kw):
    # time scale 0.02: a 2.4 s deadline, room for retries on a busy machine
    cfg = ServeConfig(**{"workers": 2, "slo_s": 60.0, "time_scale": 0.02, **kw})
    backend = worker_backend(
        profile,
        executor="profile",
        discriminator="reference",
        time_scale=cfg.time_scale,
        chaos=Chaos.parse(chaos, seed=cfg.seed),
    )
    return build_app(
        profile, cfg, executor="profile", router="reference", discriminator="reference",
        backend=backend,
    )  # fmt: skip


async def _burst(c, n: int) -> list[int]:
    rs = await asyncio.gather(
        *(c.post("/v1/images/generations", json={"prompt": f"p{i}"}) for i in range(n))
    )
    return [r.status_code for r in rs]


def test_a_worker_failing_every_batch_fails_no_request(paper_profile):
    app = _app(paper_profile, ["fail:0"])

    async def go(c):
        codes = await _burst(c, 24)
        return codes, app.state.service, (await c.get("/readyz"))

    codes, service, ready = run(with_client(app, go))
    assert codes == [200] * 24
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    assert ready.json()["workers"]["failed"] == 1
    assert (
        service.snapshot().engine.workers[0].status == "failed"
        and service.snapshot().engine.workers[1].status != "failed"
    )


def test_random_batch_failures_are_retried(paper_profile):
    app = _app(paper_profile, ["fail-rate:0.3"])
    codes = run(with_client(app, lambda c: _burst(c, 24)))
    assert codes.count(200) >= 23  # a query fails only after 3 failed tries (0.3^3)


def test_a_hanging_worker_is_reaped_and_its_requests_served(paper_profile):
    # worker 0 holds the light model at the initial demand (worker 1 the heavy one): every
    # light batch hangs until the watchdog takes worker 0 out; its queries go to heavy
    # (time scale 0.05: the watchdog's extra real second is 20 profile s, well within the
    # 120 s deadline)
    app = _app(paper_profile, ["hang:0"], watchdog_factor=2.0, time_scale=0.05)

    async def go(c):
        light = app.state.service.plan.pair[0]
        assert app.state.service.engine.workers[0].assigned == light
        codes = await _burst(c, 8)
        return codes, app.state.service

    codes, service = run(with_client(app, go))
    assert codes == [200] * 8
    assert (
        service.snapshot().engine.workers[0].status == "failed"
    )  # out of service until --restart-after
