"""Sim-vs-live parity: the same trace and seed through `simulate` and the live server."""

import asyncio

import httpx
import pytest

from hadis.loadgen import replay
from hadis.serve import ServeConfig, build_app
from hadis.sim.simulator import SimConfig, initial_demand, simulate
from hadis.sim.trace import Trace, azure_functions

TIME_SCALE = 0.05  # 20x faster than real time: SLO 60 s -> 3 s


def peak_slice() -> Trace:
    """300 s at the peak of the paper's trace."""
    full = azure_functions(seed=0)
    keep = (full.arrival_s >= 1800) & (full.arrival_s < 2100)
    return Trace(full.arrival_s[keep] - 1800, full.prompt_id[keep], name="slice")


def live_and_simulated(profile, make_app, time_scale: float = TIME_SCALE):
    """The peak slice replayed over HTTP against `make_app(config)` and simulated."""
    trace = peak_slice()
    sim_cfg = SimConfig(gpus=16, slo_s=60.0, seed=0)
    sim = simulate(profile, trace, "hadis", sim_cfg).summary
    cfg = ServeConfig(
        workers=16,
        slo_s=60.0,
        time_scale=time_scale,
        admission=False,
        initial_demand_qps=initial_demand(trace, sim_cfg),
    )
    app = make_app(cfg)

    async def go():
        async with app.router.lifespan_context(app):
            while not app.state.service.ready:
                await asyncio.sleep(0.01)
            return await replay(
                "http://hadis",
                trace,
                profile,
                slo_s=60.0,
                gpus=16,
                time_scale=time_scale,
                transport=httpx.ASGITransport(app=app),
            )

    return asyncio.run(go()), sim, trace


def assert_parity(live, sim, trace) -> None:
    assert live.queries == sim.queries == len(trace)
    # Stated tolerance: violation ratio within 0.02 absolute, served quality within 2.5%.
    # Measured: FID 23.82 simulated vs 24.00 live, 23.94-24.12 through Ray (at most 1.3%;
    # before the switch-aware controller 24.04 vs 24.05-24.06, 0.9% with a second run
    # competing for the 2 cores), 0 violations in both. The gap comes from the controller:
    # live ticks see arrivals shifted by HTTP and scheduling delays (x20 at this time
    # scale), so the demand estimate differs slightly and the planner picks other,
    # near-tied configurations.
    assert abs(live.violation_ratio - sim.violation_ratio) <= 0.02
    assert abs(live.quality - sim.quality) <= 0.025 * sim.quality
    assert live.http_status.get("200", 0) >= 0.97 * len(trace)


@pytest.mark.slow
def test_live_server_matches_simulator(paper_profile):
    live, sim, trace = live_and_simulated(
        paper_profile, lambda cfg: build_app(paper_profile, cfg, executor="profile")
    )
    assert_parity(live, sim, trace)
