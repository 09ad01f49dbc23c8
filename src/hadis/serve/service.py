"""The engine on a real clock: workers in threads, the controller in the background.

Everything that touches the Engine or the Controller runs on the asyncio loop thread; worker
threads only run executors (one thread per worker = one device slot) and hand results back
with `call_soon_threadsafe`. The engine's clock is in profile seconds: real elapsed seconds
divided by `time_scale` (1.0 for real models), so the SLO, re-plan period and switch
delays keep the profile's units. Planning runs in a thread under a timeout; if it fails or
times out the last plan stays.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hadis.engine import (
    Controller,
    ControllerConfig,
    Dispatch,
    Engine,
    EngineConfig,
    Query,
)
from hadis.engine.query import DROPPED, LIGHT, DropReason
from hadis.errors import HadisError
from hadis.planner import Plan, get_policy
from hadis.profiles import Profile
from hadis.routing import Discriminator, Router
from hadis.routing.reference import reference_prompts
from hadis.serve.executors import Executor, resized_png
from hadis.serve.listener import ServiceListener

if TYPE_CHECKING:
    from hadis.serve.prom import ServerMetrics

log = logging.getLogger(__name__)
QUARANTINE_AFTER = 3  # batches failed in a row before a worker is taken out of service


@dataclass(frozen=True)
class ServeConfig:
    workers: int = 1
    slo_s: float = 60.0  # profile seconds
    policy: str = "hadis"
    time_scale: float = 1.0  # real seconds per profile second
    seed: int = 0
    max_queue: int = 1000  # queued queries beyond which new requests get 429
    max_n: int = 4  # images per request
    admission: bool = True  # 429 when the queue is full or the SLO cannot be met
    replan_period_s: float = 50.0
    check_s: float = 10.0
    drop_factor: float = 1.5
    switch_delay_s: float = 3.0
    initial_demand_qps: float = 0.5
    plan_timeout_s: float = 5.0  # real seconds
    policy_options: dict[str, Any] = field(default_factory=dict)
    # the front door (serve/guard.py)
    api_keys: tuple[str, ...] = ()  # none: no authentication
    protect_metrics: bool = False  # /metrics needs a key too (health probes never do)
    max_body_bytes: int = 1 << 20
    docs: bool = False  # /docs and /openapi.json
    gallery: int = 0  # recent requests the dashboard shows (prompts and images); 0: off
    # a batch still running after watchdog_factor x its profiled latency (+1 real second)
    # is hung: its worker is taken out of service like one that keeps failing (checked
    # twice a second)
    watchdog_factor: float = 10.0
    restart_after_s: float = 30.0  # real seconds before a worker out of service restarts

    def __post_init__(self) -> None:
        if any(not k.strip() for k in self.api_keys):
            raise HadisError("an API key must not be empty")
        if self.max_body_bytes < 1024:
            raise HadisError(f"max body bytes must be >= 1024, got {self.max_body_bytes}")
        if self.workers < 1:
            raise HadisError(f"workers must be >= 1, got {self.workers}")
        if not self.time_scale > 0:
            raise HadisError(f"time scale must be > 0, got {self.time_scale}")
        if self.gallery < 0:
            raise HadisError(f"gallery must be >= 0, got {self.gallery}")
        if not self.watchdog_factor > 1:
            raise HadisError(f"watchdog factor must be > 1, got {self.watchdog_factor}")
        if not self.restart_after_s >= 0:
            raise HadisError(f"restart after must be >= 0 s, got {self.restart_after_s}")
        if self.max_n < 1 or self.max_queue < 1:
            raise HadisError("max_n and max_queue must be >= 1")


@dataclass
class Slot:
    """The server's handle on one query (Query.user)."""

    future: asyncio.Future
    size: tuple[int, int]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one query ended, as reported to the client."""

    ok: bool
    image: bytes | None
    model: str
    path: str
    pair: tuple[str, ...]
    router_score: float | None
    confidence: float | None
    queue_s: float  # real seconds from arrival to first batch start
    total_s: float  # real seconds from arrival to the end
    drop: DropReason | None = None  # why it ended without an image (when not ok)
    detail: str = ""  # e.g. the executor's error message


class Rejected(HadisError):
    """Admission control refused a request (HTTP 429)."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class LiveService:
    def __init__(
        self,
        profile: Profile,
        config: ServeConfig,
        executor_factory: Callable[[], Executor],
        router: Router,
        discriminator: Discriminator,
        executor_name: str = "",
        listeners: list[ServiceListener] | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self.profile = profile
        self.config = config
        self.executor_factory = executor_factory
        self.executor_name = executor_name
        self.router = router
        self.discriminator = discriminator
        self.listeners = listeners or []
        self.on_ready = on_ready
        self.ready = False
        self._query_of: dict[asyncio.Future, Query] = {}  # queued or running, by future
        self.switch_seconds: list[tuple[int, str, float]] = []  # (worker, model, real s)
        self.load_errors: list[str] = []
        self.failed_workers: set[int] = set()  # load failed, or quarantined (lost)
        self._failures_in_a_row: dict[int, int] = {}  # batches failed since the last success
        # bumped when a worker is taken out of service: late results of its old life are
        # ignored (its thread may still finish a hung batch after the restart)
        self._epoch: dict[int, int] = {}
        self.restarts = 0
        self._plan_reason = "start"
        self._plan_key: tuple | None = None
        self._ids = itertools.count()
        self._prompt_ids = {p: i for i, p in enumerate(reference_prompts())}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []
        self._pools: list[concurrent.futures.ThreadPoolExecutor] = []
        self._executors: list[Executor] = []
        self._loading = 0
        self.engine: Engine | None = None
        self.controller: Controller | None = None

    # ------------------------------------------------------------------ lifecycle
    def now(self) -> float:
        """Engine time in profile seconds."""
        return (time.monotonic() - self._t0) / self.config.time_scale

    async def start(self) -> None:
        cfg = self.config
        self._loop = asyncio.get_running_loop()
        self._t0 = time.monotonic()
        self.engine = Engine(
            self.profile,
            cfg.workers,
            # a query is retried as often as a worker may fail before its quarantine, so
            # one bad worker cannot fail a request (it may still miss its deadline: 504)
            EngineConfig(
                cfg.slo_s, cfg.drop_factor, cfg.switch_delay_s, cfg.seed, QUARANTINE_AFTER
            ),
            self.router,
            self.discriminator,
            self,
        )
        self.controller = Controller(
            self.engine,
            get_policy(cfg.policy, **cfg.policy_options),
            cfg.workers,
            ControllerConfig(
                period_s=cfg.replan_period_s,
                check_s=min(cfg.check_s, cfg.replan_period_s),
                initial_demand_qps=cfg.initial_demand_qps,
            ),
        )
        self._pools = [
            concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"hadis-worker-{i}")
            for i in range(cfg.workers)
        ]
        self._executors = [self.executor_factory() for _ in range(cfg.workers)]
        self._run(self.controller.start(self.now()))
        self._tasks.append(asyncio.create_task(self._control_loop()))
        self._tasks.append(asyncio.create_task(self._watchdog_loop()))
        if self._loading == 0 and not self.load_errors:
            self._set_ready()

    def _set_ready(self) -> None:
        if not self.ready:
            self.ready = True
            if self.on_ready is not None:
                self.on_ready()

    async def stop(self) -> None:
        """Stop accepting work; every queued query ends with an explicit error."""
        self.ready = False
        for task in self._tasks:
            task.cancel()
        if self.engine is not None:
            self.engine.drain(self.now(), DropReason.SHUTDOWN)
        for pool in self._pools:
            pool.shutdown(wait=False, cancel_futures=True)
        for slot in self._inflight_slots():
            if not slot.future.done():
                slot.future.set_result(None)

    def _inflight_slots(self) -> list[Slot]:
        if self.engine is None:
            return []
        return [q.user for w in self.engine.workers for q in w.running if isinstance(q.user, Slot)]

    # ------------------------------------------------------------------ requests
    def admit(self, n: int) -> None:
        """Raise Rejected when the queue is full or the SLO cannot be met."""
        engine, plan = self.engine, self.plan
        if engine is None or plan is None:
            raise Rejected("not started", 1.0)
        if not self.config.admission:
            return
        queued = sum(len(q) for q in engine.queues.values())
        drain = self._drain_s(plan)
        if queued + n > self.config.max_queue:
            raise Rejected(f"queue full ({queued} queued)", drain)
        fastest = min(plan.path_latency_s.values(), default=0.0)
        if drain + fastest > self.config.slo_s:
            raise Rejected(
                f"the SLO of {self.config.slo_s:g}s cannot be met: the backlog needs "
                f"{drain:.1f}s to drain",
                drain,
            )

    def _drain_s(self, plan: Plan) -> float:
        """Profile seconds the current backlog needs at the planned capacity."""
        worst = 0.0
        for model, queue in self.engine.queues.items():  # type: ignore[union-attr]
            if queue:
                cap = plan.capacity_qps.get(model, 0.0)
                worst = max(worst, math.inf if cap <= 0 else len(queue) / cap)
        return worst

    def retry_after_real_s(self, err: Rejected) -> int:
        seconds = err.retry_after_s * self.config.time_scale
        return max(1, math.ceil(min(seconds, 3600.0)))

    async def prescore(self, prompt: str) -> float | None:
        """The router score of an expensive router, computed in a thread so the loop never
        waits on it (it goes in with the query); None: the engine scores cheap ones."""
        if getattr(self.router, "expensive", False):
            return await asyncio.to_thread(self.router.score, self.prompt_id(prompt), prompt)
        return None

    def prompt_id(self, prompt: str) -> int | None:
        """The reference prompt id of a prompt text, if it is one."""
        return self._prompt_ids.get(prompt)

    def submit(
        self,
        prompt: str,
        n: int,
        size: tuple[int, int],
        seed: int | None,
        model: str | None,
        router_score: float | None = None,
    ) -> list[asyncio.Future]:
        """Queue n queries for the prompt; each future resolves to an Outcome."""
        engine, controller = self.engine, self.controller
        assert engine is not None and controller is not None and self._loop is not None
        now = self.now()
        pid = self.prompt_id(prompt)
        base_seed = seed if seed is not None else next(self._ids) * 7919
        futures = []
        cmds = []
        for k in range(n):
            q = Query(next(self._ids), now, pid, prompt, base_seed + k, model, router_score)
            slot = Slot(self._loop.create_future(), size)
            q.user = slot
            futures.append(slot.future)
            self._query_of[slot.future] = q
            controller.observe_arrival(now)
            cmds.extend(engine.submit(now, q))
        for listener in self.listeners:
            listener.on_arrival(now, n)
        self._run(cmds)
        return futures

    # ------------------------------------------------------------------ engine events
    def cancel(self, futures: list[asyncio.Future]) -> int:
        """The client gave up (deadline passed, connection closed): queued queries of
        these futures leave their queues now; returns how many were freed."""
        engine = self.engine
        if engine is None:
            return 0
        now, freed = self.now(), 0
        for fut in futures:
            q = self._query_of.pop(fut, None)
            if q is not None and engine.cancel(now, q):
                freed += 1
        return freed

    def on_query_done(self, q: Query) -> None:
        slot = q.user
        if isinstance(slot, Slot):
            self._query_of.pop(slot.future, None)
        for listener in self.listeners:
            listener.on_query_done(q)
        if not isinstance(slot, Slot) or slot.future.done():
            return
        scale = self.config.time_scale
        assert q.finish_s is not None, "the engine ends a query before it reports it"
        start = q.start_s if q.start_s is not None else q.finish_s
        ok = q.status != DROPPED
        slot.future.set_result(
            Outcome(
                ok=ok,
                image=q.image if ok else None,
                model=q.model,
                path=q.path,
                pair=q.pair,
                router_score=q.router_score if len(q.pair) == 2 else None,
                confidence=q.confidence,
                queue_s=(start - q.arrival_s) * scale,
                total_s=(q.finish_s - q.arrival_s) * scale,
                drop=q.drop_reason,
                detail=q.drop_detail,
            )
        )

    def on_batch(self, worker: int, model: str, size: int, start_s: float, end_s: float) -> None:
        for listener in self.listeners:
            listener.on_batch(worker, model, size, start_s, end_s)

    def on_plan(self, now: float, plan: Plan) -> None:
        for listener in self.listeners:
            listener.on_plan(now, plan)
        key = (
            plan.pair,
            plan.r,
            plan.d,
            tuple(sorted(plan.gpus.items())),
            tuple(sorted(plan.batch.items())),
            plan.split and tuple(sorted(plan.split.items())),
        )
        if key != self._plan_key:
            self._plan_key = key
            for listener in self.listeners:
                listener.on_plan_change(now, plan, self._plan_reason)

    def worker_state(self, wid: int) -> str:
        """busy, switching (loading a model), idle, or failed (out of service)."""
        if wid in self.failed_workers:
            return "failed"
        engine = self.engine
        assert engine is not None
        w = engine.workers[wid]
        return "busy" if w.busy else "switching" if w.switching else "idle"

    def worker_states(self) -> dict[str, int]:
        """How many workers are in each state."""
        out = {"busy": 0, "idle": 0, "switching": 0, "failed": 0}
        for w in self.engine.workers if self.engine else []:
            out[self.worker_state(w.wid)] += 1
        return out

    def refresh_metrics(self, metrics: ServerMetrics) -> None:
        """Bring the gauges that are read on demand up to date."""
        engine, controller = self.engine, self.controller
        metrics.refresh(
            engine.queue_lengths() if engine else {},
            self.worker_states(),
            controller.demand_qps if controller else None,
        )

    @property
    def plan(self) -> Plan | None:
        return self.engine.plan if self.engine else None

    # ------------------------------------------------------------------ commands
    def _run(self, commands: list) -> None:
        for c in commands:
            if type(c) is Dispatch:
                self._dispatch(c)
            else:
                self._switch(c.worker)

    def _dispatch(self, d: Dispatch) -> None:
        executor = self._executors[d.worker]
        prompts = [q.prompt or "" for q in d.queries]
        seeds = [q.image_seed for q in d.queries]
        # A batch runs at one size: the model's own resolution (what its latency was profiled
        # at); an image asked for at another of the pool's sizes is resized to it after.
        wanted = [q.user.size if isinstance(q.user, Slot) else None for q in d.queries]
        native = self.profile.model(d.model).resolution
        size = native or next((w for w in wanted if w is not None), (64, 64))
        epoch = self._epoch.get(d.worker, 0)
        fut = self._pools[d.worker].submit(self._work, executor, d, prompts, seeds, size, wanted)
        fut.add_done_callback(lambda f: self._post(self._batch_finished, d, f, epoch))

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        """From a worker thread: run fn(*args) on the loop (dropped once it has closed)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        # closed between the check and the call: the service stopped, nothing to deliver
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(fn, *args)

    def _work(self, executor: Executor, d: Dispatch, prompts, seeds, size, wanted):
        """In the worker thread: generate, then, when the engine asks for it (a light batch
        of a plan that escalates), score the light images here rather than on the loop;
        images asked for at another size than the batch's are resized here too."""
        out = executor.generate(d.model, prompts, seeds, size)
        images = [
            img if w is None or tuple(w) == tuple(size) else resized_png(img, w)
            for img, w in zip(out.images, wanted, strict=False)
        ]
        confidences: list[float | None] = [None] * len(out.images)
        if d.score:
            for i, (q, image) in enumerate(zip(d.queries, out.images, strict=False)):
                if q.path == LIGHT and q.pinned is None:
                    confidences[i] = self.discriminator.confidence(
                        d.model, q.prompt_id, q.image_seed, image
                    )
        return images, confidences

    async def _watchdog_loop(self, every_s: float = 0.5) -> None:
        """Twice a second: a batch still running after watchdog_factor x its profiled
        latency (+1 real second) is hung; its worker is taken out of service."""
        engine = self.engine
        assert engine is not None
        cfg = self.config
        while True:
            await asyncio.sleep(every_s)
            now = self.now()
            for w in engine.workers:
                if not (w.alive and w.busy and w.running and w.loaded):
                    continue
                expected = self.profile.model(w.loaded).batch_latency_s(len(w.running))
                if now - w.started_s > expected * cfg.watchdog_factor + 1.0 / cfg.time_scale:
                    log.error("worker %d: a batch of %s hung; out of service", w.wid, w.loaded)
                    self._out_of_service(now, w.wid, f"a batch of {w.loaded} hung")

    def _batch_finished(self, d: Dispatch, fut: concurrent.futures.Future, epoch: int) -> None:
        engine = self.engine
        assert engine is not None
        now = self.now()
        if self._epoch.get(d.worker, 0) != epoch:
            return  # the worker was taken out of service since: its batch is queued again
        try:
            images, confidences = fut.result()
        except Exception as e:
            log.exception("worker %d failed a batch of %s", d.worker, d.model)
            self._worker_failed(now, d.worker, str(e))
            return
        self._failures_in_a_row[d.worker] = 0
        for q, image, conf in zip(d.queries, images, confidences, strict=False):
            q.image = image
            if conf is not None:
                q.confidence = conf
        self._run(engine.batch_done(now, d.worker))

    def _worker_failed(self, now: float, worker: int, detail: str) -> None:
        """A batch failed: its queries are retried (engine.fail_batch). A worker that fails
        QUARANTINE_AFTER batches in a row is taken out of service instead: its batch goes
        back to the queue uncounted, the controller re-plans for fewer workers, and when
        none is left whatever is queued ends with an explicit error."""
        engine, controller = self.engine, self.controller
        assert engine is not None and controller is not None
        n = self._failures_in_a_row.get(worker, 0) + 1
        self._failures_in_a_row[worker] = n
        if n < QUARANTINE_AFTER:
            self._run(engine.fail_batch(now, worker, detail))
            return
        log.error("worker %d failed %d batches in a row; taking it out of service", worker, n)
        self._out_of_service(now, worker, detail)

    def _out_of_service(self, now: float, worker: int, detail: str) -> None:
        """Quarantine a worker: its batch goes back to the queue, the controller re-plans
        for the others, and it restarts (a fresh thread and executor) after a while."""
        engine, controller = self.engine, self.controller
        assert engine is not None and controller is not None
        self._epoch[worker] = self._epoch.get(worker, 0) + 1
        self.failed_workers.add(worker)
        self._run(engine.worker_lost(now, worker))
        controller.workers_changed()
        if engine.live_workers() == 0:
            engine.drain(now, DropReason.FAILED, f"no worker left ({detail})")
        if self._loop is not None:
            self._loop.call_later(self.config.restart_after_s, self._restart, worker)

    def _restart(self, worker: int) -> None:
        """Bring a quarantined worker back: a new thread (the old one may be stuck in a
        hung batch) and a new executor; the plan gives it a model to load."""
        engine, controller = self.engine, self.controller
        if engine is None or controller is None or worker not in self.failed_workers:
            return
        self._pools[worker].shutdown(wait=False, cancel_futures=True)
        self._pools[worker] = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=f"hadis-worker-{worker}"
        )
        self._executors[worker] = self.executor_factory()
        self.failed_workers.discard(worker)
        self._failures_in_a_row[worker] = 0
        self.restarts += 1
        log.warning("worker %d restarted", worker)
        self._run(engine.worker_back(self.now(), worker))
        controller.workers_changed()

    def _switch(self, worker: int) -> None:
        """A WakeUp means the worker must load its newly assigned model: do it for real."""
        engine = self.engine
        assert engine is not None
        target = engine.workers[worker].loading
        assert target is not None, "a WakeUp for a worker with nothing to load"
        executor = self._executors[worker]
        self._loading += 1
        epoch = self._epoch.get(worker, 0)
        fut = self._pools[worker].submit(executor.load, target)
        fut.add_done_callback(lambda f: self._post(self._loaded, worker, target, f, epoch))

    def _loaded(
        self, worker: int, model: str, fut: concurrent.futures.Future, epoch: int = 0
    ) -> None:
        self._loading -= 1
        if self._epoch.get(worker, 0) != epoch:
            return  # taken out of service while loading
        try:
            seconds = fut.result()
        except Exception as e:
            if self.ready:  # a restarted (or re-planned) worker: out of service, retried
                log.error("worker %d could not load %s: %s", worker, model, e)
                self._out_of_service(self.now(), worker, f"could not load {model}: {e}")
                return
            # at start-up: the worker stays out of service and the server not ready
            log.error("worker %d could not load %s: %s", worker, model, e)
            self.load_errors.append(f"worker {worker}: {e}")
            self.failed_workers.add(worker)
            return
        self.failed_workers.discard(worker)
        self.switch_seconds.append((worker, model, seconds))
        for listener in self.listeners:
            listener.on_switch(worker, model, seconds)
        self._run(self.engine.worker_ready(self.now(), worker))  # type: ignore[union-attr]
        if self._loading == 0 and not self.load_errors:
            self._set_ready()

    # ------------------------------------------------------------------ control loop
    async def _control_loop(self) -> None:
        controller = self.controller
        assert controller is not None
        interval = controller.config.check_s * self.config.time_scale
        while True:
            await asyncio.sleep(interval)
            req = controller.due(self.now())
            if req is None:
                continue
            try:
                plan = await asyncio.wait_for(
                    asyncio.to_thread(controller.decide, req), self.config.plan_timeout_s
                )
            except TimeoutError:
                controller.failures += 1
                log.warning(
                    "planner timed out after %.1fs; keeping the last plan",
                    self.config.plan_timeout_s,
                )
                continue
            if plan is not None:
                self._plan_reason = controller.reason
                self._run(controller.adopt(self.now(), plan))
