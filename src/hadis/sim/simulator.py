"""Trace replay over a simulated GPU cluster, driving the real engine and controller.

The virtual clock is a heap of (time, seq, kind, worker); arrivals are merged in from the
sorted trace instead of being pushed. At equal times, batch completions and switch wake-ups
run first (in the order they were scheduled), then arrivals, then re-plans. Batch latencies
are the profile's (optionally times lognormal noise): looked up, never recomputed.
"""

from __future__ import annotations

import dataclasses
import gc
import heapq
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hadis.core import Dispatch, LoadModel, Query, RunConfig, RunSummary
from hadis.engine import Controller, Engine, MetricsRecorder, QualityTable, summarize
from hadis.errors import HadisError
from hadis.planner import get_policy
from hadis.profiles import Profile
from hadis.routing import Discriminator, ReferenceDiscriminator, ReferenceRouter, Router
from hadis.routing.simple import RandomDiscriminator, make_discriminator
from hadis.sim.trace import Trace

_DONE, _WAKE = 0, 1


WINDOW_S = 50.0  # metrics window
# how long past the last arrival the control loop keeps ticking while work runs (re-plan
# periods): long enough for any backlog a trace can leave, short enough that a run ends
TAIL_PERIODS = 20


@dataclass(frozen=True)
class SimConfig(RunConfig):
    """A run's settings (RunConfig) and the simulated cluster's. initial_demand_qps None:
    the trace's mean rate over its first re-plan period."""

    gpus: int = 16
    window_s: float = WINDOW_S
    latency_noise: float = 0.0  # sigma of multiplicative lognormal noise on batch latency

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.gpus, bool) or not isinstance(self.gpus, int) or self.gpus < 1:
            raise HadisError(f"gpus must be a positive integer, got {self.gpus!r}")
        if not self.window_s > 0:
            raise HadisError(f"window must be > 0 seconds, got {self.window_s}")
        if self.latency_noise < 0:
            raise HadisError(f"latency noise must be >= 0, got {self.latency_noise}")


@dataclass
class SimResult:
    policy: str
    summary: RunSummary
    recorder: MetricsRecorder
    events: int


def trace_image_seeds(trace: Trace, seed: int) -> list[int]:
    """Which of a prompt's four reference images each query gets (the live load generator
    sends the same seeds, for parity)."""
    return np.random.default_rng(seed + 1).integers(0, 4, size=len(trace)).tolist()


def initial_demand(trace: Trace, config: SimConfig) -> float:
    """Demand assumed by the first plan: given, or the trace's rate in its first period.

    A deployment starts from a capacity estimate; using the first period's rate stands in
    for it so that no policy starts from an arbitrary guess.
    """
    if config.initial_demand_qps is not None:
        return config.initial_demand_qps
    first = np.searchsorted(trace.arrival_s, config.replan_period_s)
    return first / config.replan_period_s


def default_discriminator(
    profile: Profile, seed: int, reference_only: bool = True
) -> Discriminator:
    """The paper's per-prompt scores where the profile maps models to them (extra.index);
    otherwise a seeded random one, so that d stays the escalated fraction (served quality
    comes from the profile's rows either way). With prompts outside the reference set,
    those get random scores drawn from the reference distribution."""
    if any(isinstance(m.extra.get("index"), int) for m in profile.models):
        if reference_only:
            return ReferenceDiscriminator(profile)
        return make_discriminator("reference", profile, seed)
    return RandomDiscriminator(seed)


def _scores_ahead(router: Router, trace: Trace) -> list[float] | None:
    """The whole trace's router scores in one call when the router can (reference prompt
    ids); otherwise the simulator scores each query as it arrives, when the plan routes."""
    score_ids = getattr(router, "score_ids", None)
    if score_ids is None or trace.prompt or np.any(trace.prompt_id < 0):
        return None
    return score_ids(trace.prompt_id)


def _confidences_ahead(
    discriminator: Discriminator, profile: Profile, trace: Trace, image_seeds: list[int]
) -> dict[str, list[float]] | None:
    """Every query's confidence under every model, looked up at once when the discriminator
    can (reference scores for every model); otherwise the simulator scores each batch
    Dispatch.scored() names."""
    lookup = getattr(discriminator, "confidence_ids", None)
    if lookup is None or np.any(trace.prompt_id < 0):
        return None
    seeds = np.asarray(image_seeds)
    tables = {m.name: lookup(m.name, trace.prompt_id, seeds) for m in profile.models}
    if any(t is None for t in tables.values()):
        return None
    return tables


def simulate(
    profile: Profile,
    trace: Trace,
    policy: str,
    config: SimConfig,
    router: Router | None = None,
    discriminator: Discriminator | None = None,
    progress: Callable[[float], None] | None = None,
) -> SimResult:
    """Replay `trace` under `policy`; `progress` gets the fraction of arrivals replayed."""
    outside = int(np.sum(trace.prompt_id < 0))
    if outside and router is None:
        raise HadisError(
            f"the trace has {outside} prompt(s) outside the paper's reference set, which the "
            "reference router cannot score: pass --router online (from the text), random "
            "or none"
        )
    recorder = MetricsRecorder()
    router = router or ReferenceRouter()
    discriminator = discriminator or default_discriminator(
        profile, config.seed, reference_only=not outside
    )
    engine = Engine(profile, config.gpus, config.engine_config(), router, discriminator, recorder)
    controller = Controller(
        engine,
        get_policy(policy, **config.policy_options),
        config.gpus,
        config.controller_config(initial_demand(trace, config)),
    )
    image_seeds = trace_image_seeds(trace, config.seed)
    router_scores = _scores_ahead(router, trace)
    confidences = _confidences_ahead(discriminator, profile, trace, image_seeds)
    score_router, score_image = router.score, discriminator.confidence
    noise_rng = np.random.default_rng(config.seed + 2)
    sigma = config.latency_noise
    latency = {m.name: m.latency_table for m in profile.models}

    heap: list[tuple[float, int, int, int]] = []
    seq = itertools.count()
    push, pop = heapq.heappush, heapq.heappop

    def run(now: float, commands: list) -> None:
        for c in commands:
            if type(c) is Dispatch:
                dur = latency[c.model][len(c.queries)]
                if c.score:  # the worker scores its images (no image here: by id)
                    if confidences is not None:
                        table = confidences[c.model]
                        for q in c.queries:
                            q.confidence = table[q.qid]
                    else:
                        for q, scored in zip(c.queries, c.scored(), strict=True):
                            if scored:
                                q.confidence = score_image(c.model, q.prompt_id, q.image_seed)
                if sigma:
                    dur *= math.exp(sigma * noise_rng.standard_normal())
                push(heap, (now + dur, next(seq), _DONE, c.worker))
            else:  # LoadModel: the switch takes its expected time
                push(heap, (now + c.expected_s, next(seq), _WAKE, c.worker))

    arrivals = trace.arrival_s.tolist()
    prompt_ids = trace.prompt_id.tolist()
    prompts = trace.prompt
    n, i, events = len(arrivals), 0, 0
    tick = controller.config.check_s
    next_tick = tick
    idle_skip_s = 2 * config.replan_period_s
    tail_end = (arrivals[-1] if n else 0.0) + TAIL_PERIODS * config.replan_period_s
    # Warm start: the first plan's models are loaded before traffic begins, as a live
    # server loads them before it reports ready; later switches cost what LoadModel says.
    first = controller.start(0.0)
    recorder.note_reason(controller.reason)
    while any(type(c) is LoadModel for c in first):
        ready = [c for c in first if type(c) is LoadModel]
        first = [c for c in first if type(c) is not LoadModel]
        for c in ready:
            first += engine.worker_ready(0.0, c.worker)
    run(0.0, first)
    inf = math.inf
    now = 0.0
    submit, batch_done, worker_ready = engine.submit, engine.batch_done, engine.worker_ready
    observe = controller.observe_arrival
    t_arr = arrivals[0] if n else inf
    # The loop allocates ~10 objects per query and frees none of them in cycles; pausing
    # the cyclic collector makes it up to 1.5x faster (re-enabled right after).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while True:
            t_heap = heap[0][0] if heap else inf
            # the control loop runs while queries arrive or work runs, as a live server's
            # does: a burst at the end of a trace still gets its backlog re-plans (for at
            # most `TAIL_PERIODS` re-plan periods past the last arrival: a run always ends)
            t_tick = next_tick if i < n or (heap and next_tick <= tail_end) else inf
            if not heap and t_arr - t_tick > idle_skip_s and engine.idle():
                # nothing runs or waits until a far arrival: jump to the tick before it, so
                # a run costs per query, not per second of trace (Controller.skip_idle)
                skipped = math.floor((t_arr - t_tick) / tick) - 1
                controller.skip_idle(skipped, t_tick + skipped * tick)
                next_tick = t_tick = t_tick + skipped * tick
            if t_heap <= t_arr and t_heap <= t_tick:
                if t_heap == inf:
                    break
                now, _, kind, worker = pop(heap)
                cmds = batch_done(now, worker) if kind == _DONE else worker_ready(now, worker)
            elif t_arr <= t_tick:
                now = t_arr
                pid = prompt_ids[i]
                text = prompts[i] if prompts else None
                q = Query(
                    i,
                    now,
                    pid if pid >= 0 else None,
                    text,
                    image_seeds[i],
                    router_score=router_scores[i] if router_scores else None,
                )
                if q.router_score is None and engine.routes_by_score:
                    q.router_score = score_router(q.prompt_id, q.prompt)
                observe(now)
                cmds = submit(now, q)
                i += 1
                t_arr = arrivals[i] if i < n else inf
                if progress is not None and i % 2000 == 0:
                    progress(i / n)
            else:
                now = t_tick
                cmds = controller.tick(now)
                if len(recorder.plans) > len(recorder.reasons):
                    recorder.note_reason(controller.reason)
                next_tick += tick
            if cmds:
                run(now, cmds)
            events += 1
    finally:
        if gc_was_enabled:
            gc.enable()
    engine.drain(now)
    summary = summarize(
        recorder,
        QualityTable(profile),
        slo_s=config.slo_s,
        gpus=config.gpus,
        window_s=config.window_s,
        duration_s=max(trace.duration_s, 1e-9),
        policy=policy,
    )
    summary = dataclasses.replace(
        summary, planner_failures=controller.failures, early_replans=controller.early_replans
    )
    return SimResult(policy, summary, recorder, events)
