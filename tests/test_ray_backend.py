"""The Ray backend on a local Ray instance: workers are named actors that return real
images, a killed actor loses no request, a hung one is reaped by the watchdog, and the
paper slice served through Ray matches the simulator like the in-process server does."""

from __future__ import annotations

import asyncio
import base64

import pytest

from hadis.core.plan import PlanRequest
from hadis.planner import HadisPolicy
from tests.ray_helpers import explicit_end, generate, live, wait_for

ray = pytest.importorskip("ray", reason="needs the [ray] extra")

from hadis.profiles import load_profile  # noqa: E402
from hadis.serve import ServeConfig, build_app, worker_backend  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
NS = "hadis-test"


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, namespace=NS, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _ray_app(
    profile,
    config: ServeConfig,
    executor: str,
    router: str = "reference",
    discriminator: str = "reference",
    chaos=None,
):
    backend = worker_backend(
        profile,
        backend="ray",
        executor=executor,
        discriminator=discriminator,
        time_scale=config.time_scale,
        local_files_only=True,
        chaos=chaos,
        namespace=NS,
        num_cpus=0.1,
    )
    return build_app(
        profile, config, executor=executor, router=router, discriminator=discriminator,
        backend=backend,
    )  # fmt: skip


def test_demo_pool_images_through_ray_are_the_in_process_images():
    pytest.importorskip("diffusers", reason="needs the [diffusion] extra")
    profile = load_profile("demo-cpu")
    cfg = ServeConfig(workers=2, slo_s=profile.serving.slo_s or 60.0, initial_demand_qps=6.0)
    kw = {"router": profile.serving.router, "discriminator": profile.serving.discriminator}
    # the slowest model the initial plan runs (a request naming another one gets a 503)
    plan = HadisPolicy().plan(PlanRequest(profile, cfg.workers, cfg.slo_s, 6.0))
    heavy = max(plan.gpus, key=lambda name: profile.model(name).latency_s[1])
    body = {"size": "32x32", "seed": 7, "model": heavy}

    async def images(app) -> tuple[bytes, dict, list, set]:
        async with live(app) as client:
            r = await generate(client, "a large red square", **body)
            assert r.status_code == 200, r.text
            service = app.state.service
            await wait_for(
                lambda: all(
                    service.workers.placement(w) not in (None, "pending")
                    for w in range(cfg.workers)
                ),
                30,
                "placements",
            )
            plan = (await client.get("/v1/plan")).json()
            item = r.json()["data"][0]
            actors = {(a["namespace"], a["name"]) for a in ray.util.list_named_actors(True)}
            return base64.b64decode(item["b64_json"]), item["hadis"], plan["workers"], actors

    via_ray, meta, workers, actors = asyncio.run(images(_ray_app(profile, cfg, "diffusers", **kw)))
    assert {(NS, "hadis-worker-0"), (NS, "hadis-worker-1")} <= actors
    node = ray.get_runtime_context().get_node_id()
    assert {w["placement"] for w in workers} == {node}
    local = build_app(profile, cfg, executor="diffusers", local_files_only=True, **kw)
    in_process, _, _, _ = asyncio.run(images(local))
    assert meta["model"] == heavy
    assert via_ray[:8] == b"\x89PNG\r\n\x1a\n" and via_ray == in_process


def test_actor_killed_mid_batch_loses_no_request(paper_profile):
    cfg = ServeConfig(workers=3, slo_s=60.0, time_scale=0.05, initial_demand_qps=2.0)
    app = _ray_app(paper_profile, cfg, "profile")

    async def go():
        async with live(app) as client:
            service = app.state.service
            tasks = [generate(client, f"a cat {i}") for i in range(24)]
            await wait_for(
                lambda: any(w.busy for w in service.engine.workers), 30, "a batch to start"
            )
            victim = next(w.wid for w in service.engine.workers if w.busy)
            before = service.workers.placement(victim)
            ray.kill(ray.get_actor(f"hadis-worker-{victim}", namespace=NS))
            results = await asyncio.gather(*tasks)
            await wait_for(
                lambda: service.snapshot().engine.workers[victim].status != "restarting",
                60,
                "restart",
            )
            return results, service, victim, before

    results, service, victim, before = asyncio.run(go())
    assert all(r.status_code == 200 for r in results), [r.status_code for r in results]
    assert service.workers.restarts >= 1 and service.engine.workers[victim].alive
    assert service.workers.placement(victim) == before  # one node: the new actor runs there too


def test_hung_worker_is_killed_by_the_watchdog(paper_profile):
    from hadis.workers.chaos import Chaos

    # worker 0 never finishes a batch (chaos hang:0), and it is the only worker
    cfg = ServeConfig(
        workers=1, slo_s=60.0, time_scale=0.05, watchdog_factor=2.0, initial_demand_qps=0.5
    )
    app = _ray_app(paper_profile, cfg, "profile", chaos=Chaos.parse(["hang:0"]))

    async def go():
        async with live(app, ready_timeout_s=60) as client:
            service = app.state.service
            first = ray.get_actor("hadis-worker-0", namespace=NS)
            task = generate(client, "a cat")
            await wait_for(lambda: service.workers.restarts >= 1, 60, "the watchdog")
            r = await task
            return r, first, service

    r, first, service = asyncio.run(go())
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(first.node.remote(), timeout=30)  # the hung actor was killed
    assert explicit_end(r) and r.status_code != 200  # the deadline passed: an explicit error
    assert service.workers.restarts >= 1


def test_paper_slice_through_ray_matches_the_simulator(paper_profile):
    from tests.test_parity import check_parity

    # the in-process parity test's slice, time scale and tolerances (tests/test_parity.py)
    check_parity(paper_profile, lambda cfg: _ray_app(paper_profile, cfg, "profile"))
