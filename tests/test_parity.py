"""Sim-vs-live parity: the same trace and seed through `simulate` and the live server."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import numpy as np
import pytest

from hadis.loadgen import Replay, run_replay
from hadis.profiles import Profile
from hadis.serve import ServeConfig, build_app
from hadis.serve.listener import ServiceListener
from hadis.sim.simulator import SimConfig, initial_demand, simulate
from hadis.sim.trace import Trace, azure_functions

# 10x faster than real time: SLO 60 s -> 6 s. At 20x, a 5 ms Ray round trip per batch
# was 0.1 s of profile time (2-5% of a batch) and the host's stalls counted 20-fold: the
# Ray run's FID gap sat at 1.5% on an idle machine and crossed 2.5% on a busy CI one.
TIME_SCALE = 0.1
# Mean batch overrun (profile seconds) above which the host did not keep pace with the
# time scale; measured on an idle 2-core machine: 0.01 in-process, 0.04-0.06 through Ray.
HOST_PACE_S = 0.15


# Where the slice starts in the paper's trace: at the peak (~6 q/s), with two plan changes
# that small perturbations do not move. The 300 s from 1,800 s sat on the edge of a plan's
# capacity: jittering arrivals by up to 0.2 s with 3% latency noise moved the simulator's
# own FID by up to 0.9% there, and live runs through Ray by up to 3.2% (2.5% tolerated);
# here by 0.00%, and live through Ray by 0.33-0.92% in six runs (docs/deploy.md).
SLICE_START_S = 2100.0


def peak_slice() -> Trace:
    """300 s at the peak of the paper's trace (from SLICE_START_S)."""
    full = azure_functions(seed=0)
    start = SLICE_START_S
    keep = (full.arrival_s >= start) & (full.arrival_s < start + 300)
    return Trace(full.arrival_s[keep] - start, full.prompt_id[keep], name="slice")


@dataclass
class BatchOverrun(ServiceListener):
    """How far the live batches ran past their profiled latency (profile seconds): the
    host's own delays (event-loop stalls, RPCs), which the simulator does not have; and
    how late the load generator sent each request (`send_lags`, filled after the run)."""

    profile: Profile
    overruns: list[float] = field(default_factory=list)
    send_lags: list[float] = field(default_factory=list)

    def on_batch(self, worker: int, model: str, size: int, start_s: float, end_s: float) -> None:
        if model:
            expected = self.profile.model(model).batch_latency_s(size)
            self.overruns.append(end_s - start_s - expected)

    @property
    def mean_s(self) -> float:
        return sum(self.overruns) / max(1, len(self.overruns))

    @property
    def send_lag_s(self) -> float:
        """The load generator's mean lag behind the trace (profile seconds): requests
        sent late arrive in clumps, which the controller reads as bursts."""
        return sum(self.send_lags) / max(1, len(self.send_lags))

    def __str__(self) -> str:
        worst = max(self.overruns, default=0.0)
        lag = max(self.send_lags, default=0.0)
        return (
            f"{len(self.overruns)} batches, overrun mean {self.mean_s:.3f} s, max {worst:.2f} s; "
            f"send lag mean {self.send_lag_s:.3f} s, max {lag:.2f} s"
        )


def live_and_simulated(profile, make_app: Callable, time_scale: float = TIME_SCALE):
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
    overrun = BatchOverrun(profile)

    async def go():
        async with app.router.lifespan_context(app):
            app.state.service.listeners.append(overrun)
            while not app.state.service.ready:
                await asyncio.sleep(0.01)
            state = Replay(trace)
            await run_replay(
                state,
                "http://hadis",
                slo_s=60.0,
                time_scale=time_scale,
                transport=httpx.ASGITransport(app=app),
            )
            for q in state.recorder.queries:  # sent at arrival_s (profile seconds)
                overrun.send_lags.append(q.arrival_s - float(trace.arrival_s[q.qid]))
            return state.summary(profile, slo_s=60.0, gpus=16)

    return asyncio.run(go()), sim, trace, overrun


def parity_errors(live, sim, trace) -> list[str]:
    # Stated tolerance: violation ratio within 0.02 absolute, served quality within 2.5%.
    # The gap comes from the controller: live ticks see arrivals shifted by HTTP and
    # scheduling delays, so the demand estimate differs slightly and the planner picks
    # other, near-tied configurations (measured numbers: README, "Sim-vs-live parity").
    errors = []
    if not live.queries == sim.queries == len(trace):
        errors.append(f"queries: live {live.queries}, simulated {sim.queries}, {len(trace)}")
    if abs(live.violation_ratio - sim.violation_ratio) > 0.02:
        errors.append(f"violations: live {live.violation_ratio}, simulated {sim.violation_ratio}")
    if abs(live.quality - sim.quality) > 0.025 * sim.quality:
        errors.append(f"FID: live {live.quality:.3f}, simulated {sim.quality:.3f}")
    if live.http_status.get("200", 0) < 0.97 * len(trace):
        errors.append(f"HTTP statuses: {live.http_status}")
    return errors


def check_parity(profile, make_app: Callable) -> None:
    """Parity at TIME_SCALE; when it misses and the host fell behind that pace (a busy
    machine: its stalls count time_scale-fold), once more at half the speed."""
    live, sim, trace, overrun = live_and_simulated(profile, make_app)
    errors = parity_errors(live, sim, trace)
    if errors and overrun.mean_s > HOST_PACE_S:
        first = f"first at time scale {TIME_SCALE}: {'; '.join(errors)} ({overrun})"
        live, sim, trace, overrun = live_and_simulated(profile, make_app, 2 * TIME_SCALE)
        errors = parity_errors(live, sim, trace)
        if errors:
            errors.append(first)
    assert not errors, f"{'; '.join(errors)} ({overrun})"


@pytest.mark.slow
def test_live_server_matches_simulator(paper_profile):
    check_parity(paper_profile, lambda cfg: build_app(paper_profile, cfg, executor="profile"))


def test_the_parity_slice_is_not_on_a_knife_edge(paper_profile):
    """The live run differs from the simulation by small timing perturbations; on a slice
    where those move the simulator's own outcome, parity measures chance (the slice from
    1,800 s: 0.9% here, 3.2% live). Arrivals jittered by up to 0.2 s and 3% latency noise
    must leave the slice's simulated FID within 0.5% (a controller change can put it on
    an edge again: then choose another slice, SLICE_START_S)."""
    trace = peak_slice()
    cfg = SimConfig(gpus=16, slo_s=60.0, seed=0)
    base = simulate(paper_profile, trace, "hadis", cfg).summary
    assert base.plan_changes >= 1  # the slice exercises re-planning
    noisy = SimConfig(gpus=16, slo_s=60.0, seed=0, latency_noise=0.03)
    for k in range(4):
        jitter = np.random.default_rng(100 + k).uniform(0.0, 0.2, len(trace))
        shifted = Trace(np.sort(trace.arrival_s + jitter), trace.prompt_id, name="jittered")
        fid = simulate(paper_profile, shifted, "hadis", noisy).summary.quality
        assert abs(fid - base.quality) <= 0.005 * base.quality, (k, fid, base.quality)
