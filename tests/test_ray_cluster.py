"""The Ray backend on a multi-node cluster (ray.cluster_utils.Cluster: several raylets on
this machine): workers spread over the nodes, a node removed under load loses no request
and the planner re-plans for fewer workers, and nodes that join bring workers back and
add new ones (--workers auto)."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.ray_helpers import explicit_end, generate, live, wait_for

ray = pytest.importorskip("ray", reason="needs the [ray] extra")

from ray.cluster_utils import Cluster  # noqa: E402

from hadis.serve import ServeConfig, build_app, worker_backend  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]
NS = "hadis-cluster-test"
CPUS_PER_WORKER = 0.5


@pytest.fixture(scope="module")
def cluster():
    if ray.is_initialized():
        ray.shutdown()
    # the head holds no worker (0 CPUs): workers live on the three worker nodes
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    nodes = [c.add_node(num_cpus=1) for _ in range(3)]
    c.wait_for_nodes()
    ray.init(address=c.address, namespace=NS, log_to_driver=False)
    yield c, nodes
    ray.shutdown()
    c.shutdown()


def test_node_lost_under_load_then_nodes_join(cluster, paper_profile):
    c, nodes = cluster
    backend = worker_backend(
        paper_profile,
        backend="ray",
        executor="profile",
        discriminator="reference",
        time_scale=0.02,
        namespace=NS,
        num_cpus=CPUS_PER_WORKER,
    )
    slots = backend.slots()
    assert slots == 6  # 3 nodes x 1 CPU / 0.5 CPU per worker: what --workers auto takes
    cfg = ServeConfig(
        workers=slots,
        slo_s=60.0,
        time_scale=0.02,
        elastic=True,
        membership_s=0.5,
        initial_demand_qps=4.0,
    )
    app = build_app(
        paper_profile,
        cfg,
        executor="profile",
        router="reference",
        discriminator="reference",
        backend=backend,
    )

    async def go():
        async with live(app) as client:
            service = app.state.service
            engine, controller = service.engine, service.controller
            # a worker's node is known once its first call answers (it may trail the load)
            await wait_for(
                lambda: all(
                    service.workers.placement(w) not in (None, "pending") for w in range(slots)
                ),
                30,
                "placements",
            )
            placements = {service.workers.placement(w) for w in range(slots)}
            # a steady load (about 5 profile q/s), the node removed in the middle of it
            tasks = []
            t0 = time.monotonic()
            removed = False
            while time.monotonic() - t0 < 8.0:
                tasks.append(generate(client, f"a cat {len(tasks)}"))
                if not removed and time.monotonic() - t0 > 2.0:
                    c.remove_node(nodes[0])
                    removed = True
                await asyncio.sleep(0.01)
            await wait_for(lambda: controller.planned_for == 4, 60, "a re-plan for 4")
            lost = {"live": engine.live_workers(), "plan": sum(engine.plan.gpus.values())}
            results = await asyncio.gather(*tasks)
            # a node with 2 CPUs joins: the 2 lost workers are placed on it, and the
            # membership loop adds 2 more (8 slots now)
            c.add_node(num_cpus=2)
            await wait_for(lambda: engine.live_workers() == 8, 120, "workers after the join")
            await wait_for(lambda: controller.planned_for == 8, 60, "a re-plan for 8")
            r = await generate(client, "a dog after the join")
            return placements, results, lost, service, r

    placements, results, lost, service, after = asyncio.run(go())
    assert len(placements) == 3  # spread over the three worker nodes
    assert results and all(explicit_end(r) for r in results)
    ok = sum(r.status_code == 200 for r in results)
    assert ok >= 0.9 * len(results), [r.status_code for r in results]
    assert lost["live"] == 4 and lost["plan"] <= 4  # re-planned for the workers left
    assert len(service.engine.workers) == 8 and service.workers.restarts >= 2
    assert after.status_code == 200
