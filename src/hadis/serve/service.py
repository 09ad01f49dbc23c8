"""The engine on a real clock: workers behind the worker layer, the controller in the
background.

Everything that touches the Engine or the Controller runs on the asyncio loop thread;
workers (threads of this process, or Ray actors: serve/workers.py) only run executors, one
per device slot, and their futures hand results back with `call_soon_threadsafe`. The
engine's clock is in profile seconds: real elapsed seconds divided by `time_scale` (1.0
for real models), so the SLO, re-plan period and switch delays keep the profile's units.
Planning runs in a thread under a timeout; if it fails or times out the last plan stays.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
from hadis.serve.executors import Executor
from hadis.serve.listener import ServiceListener
from hadis.serve.prom import WORKER_STATES, ServerMetrics
from hadis.serve.workers import (
    BatchJob,
    BatchResult,
    ThreadBackend,
    WorkerBackend,
    WorkerDied,
    WorkerHandle,
)

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
    body_timeout_s: float = 30.0  # a request body must arrive within it (408 beyond)
    docs: bool = False  # /docs and /openapi.json
    allowed_origins: tuple[str, ...] = ()  # CORS: browser origins allowed to call the API
    gallery: int = 0  # recent requests the dashboard shows (prompts and images); 0: off
    # a batch still running after watchdog_factor x its profiled latency (+1 real second)
    # is hung: its worker is taken out of service like one that keeps failing (checked
    # twice a second)
    watchdog_factor: float = 10.0
    restart_after_s: float = 30.0  # real seconds before a worker out of service restarts
    # real seconds the first models may take to load (retried meanwhile); then the server
    # gives up (the CLI exits non-zero); 0: wait forever
    load_timeout_s: float = 600.0
    # follow the backend's resources: workers are added as the cluster grows (--workers auto)
    elastic: bool = False
    membership_s: float = 2.0  # real seconds between looks at the cluster's resources

    def __post_init__(self) -> None:
        if any(not k.strip() for k in self.api_keys):
            raise HadisError("an API key must not be empty")
        if not self.body_timeout_s > 0:
            raise HadisError(f"body timeout must be > 0 s, got {self.body_timeout_s}")
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
        if not self.load_timeout_s >= 0:
            raise HadisError(f"load timeout must be >= 0 s, got {self.load_timeout_s}")
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
        executor_factory: Callable[[], Executor] | None,
        router: Router,
        discriminator: Discriminator,
        executor_name: str = "",
        listeners: list[ServiceListener] | None = None,
        on_ready: Callable[[], None] | None = None,
        backend: WorkerBackend | None = None,
        on_failed: Callable[[], None] | None = None,
    ) -> None:
        """Workers run on `backend` (default: threads of this process, each with an
        executor from `executor_factory`, scored by `discriminator`)."""
        if backend is None:
            if executor_factory is None:
                raise HadisError("a live service needs an executor factory or a backend")
            backend = ThreadBackend(executor_factory, discriminator)
        self.profile = profile
        self.config = config
        self.backend = backend
        self.executor_name = executor_name
        self.router = router
        self.discriminator = discriminator
        self.listeners = listeners or []
        self.on_ready = on_ready
        self.on_failed = on_failed  # called when the models did not load in time
        self.ready = False
        self.startup_failed = False
        self._load_attempts: dict[int, int] = {}
        self._query_of: dict[asyncio.Future, Query] = {}  # queued or running, by future
        self.switch_seconds: list[tuple[int, str, float]] = []  # (worker, model, real s)
        self.load_errors: list[str] = []
        self.failed_workers: set[int] = set()  # load failed, or quarantined (lost)
        self.restarting: set[int] = set()  # spawned again, not yet ready (or placed)
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
        self._handles: list[WorkerHandle | None] = []  # None: being spawned
        self._loading = 0
        self._closed = False  # stopped: no worker is replaced any more
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
        # spawning may block (a Ray actor's name, a model's first import): off the loop
        handles = await asyncio.to_thread(
            lambda: [self.backend.spawn(i) for i in range(cfg.workers)]
        )
        for wid, handle in enumerate(handles):
            self._handles.append(handle)
            self._watch(wid, handle)
        self._run(self.controller.start(self.now()))
        self._tasks.append(asyncio.create_task(self._control_loop()))
        self._tasks.append(asyncio.create_task(self._watchdog_loop()))
        if cfg.elastic:
            self._tasks.append(asyncio.create_task(self._membership_loop()))
        if cfg.load_timeout_s > 0:
            self._tasks.append(asyncio.create_task(self._startup_deadline()))
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
        self._closed = True
        for wid in range(len(self._handles)):  # what the workers still report is ignored
            self._epoch[wid] = self._epoch.get(wid, 0) + 1
        await asyncio.to_thread(self.backend.close)
        for slot in self._inflight_slots():
            if not slot.future.done():
                slot.future.set_result(None)

    def _inflight_slots(self) -> list[Slot]:
        if self.engine is None:
            return []
        return [q.user for w in self.engine.workers for q in w.running if isinstance(q.user, Slot)]

    # ------------------------------------------------------------------ requests
    def admit(self, n: int) -> None:
        """Raise Rejected when the service cannot take n more queries at all (not started,
        queue full); whether their path can meet the SLO is checked in `submit`."""
        engine, plan, controller = self.engine, self.plan, self.controller
        if engine is None or plan is None or controller is None:
            raise Rejected("not started", 1.0)
        if not self.config.admission:
            return
        queued = sum(len(q) for q in engine.queues.values())
        if queued + n > self.config.max_queue:
            controller.observe_arrival(self.now(), n)
            waits = [self.wait_s(m) for m, g in plan.gpus.items() if g > 0]
            raise Rejected(f"queue full ({queued} queued)", min(waits, default=1.0))

    def wait_s(self, model: str) -> float:
        """Profile seconds before a query joining `model`'s queue now could start: 0 with
        a free worker of it and nothing queued, else its queue at the plan's capacity."""
        engine, plan = self.engine, self.plan
        assert engine is not None and plan is not None
        queue = len(engine.queues[model])
        if engine.free[model] and queue == 0:
            return 0.0
        cap = plan.capacity_qps.get(model, 0.0)
        return math.inf if cap <= 0 else queue / cap

    def _late_path(self, queries: list[Query]) -> tuple[str, float] | None:
        """The first routed query whose model cannot start it in time: (model, wait)."""
        for q in queries:
            wait = self.wait_s(q.model)
            if wait + self.profile.model(q.model).batch_latency_s(1) > self.config.slo_s:
                return q.model, wait
        return None

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
        """Queue n queries for the prompt; each future resolves to an Outcome. Raises
        Rejected when the model they were routed to cannot start them within the SLO."""
        engine, controller = self.engine, self.controller
        assert engine is not None and controller is not None and self._loop is not None
        now = self.now()
        pid = self.prompt_id(prompt)
        base_seed = seed if seed is not None else next(self._ids) * 7919
        queries = [
            Query(next(self._ids), now, pid, prompt, base_seed + k, model, router_score)
            for k in range(n)
        ]
        controller.observe_arrival(now, n)  # admitted or not: demand is what arrives
        for q in queries:
            engine.route(q)
        # admission per path: the request is turned away only when the model its queries
        # were routed to cannot start them in time (a full heavy queue does not block what
        # the light model takes; a free worker always takes work, whatever the plan)
        late = self._late_path(queries) if self.config.admission else None
        if late is not None:
            model, wait = late
            raise Rejected(
                f"the SLO of {self.config.slo_s:g}s cannot be met: {model}'s queue needs "
                f"{wait:.1f}s to drain",
                wait,
            )
        futures = []
        cmds = []
        for q in queries:
            slot = Slot(self._loop.create_future(), size)
            q.user = slot
            futures.append(slot.future)
            self._query_of[slot.future] = q
            cmds.extend(engine.enqueue(now, q))
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
        """busy, switching (loading a model), idle, restarting (replaced, its new process
        not ready or not placed yet), or failed (out of service)."""
        if wid in self.restarting:
            return "restarting"
        if wid in self.failed_workers:
            return "failed"
        engine = self.engine
        assert engine is not None
        w = engine.workers[wid]
        return "busy" if w.busy else "switching" if w.switching else "idle"

    def placement(self, wid: int) -> str | None:
        """Where a worker runs (e.g. a Ray node id); None while it is being spawned."""
        handle = self._handles[wid] if wid < len(self._handles) else None
        return handle.placement if handle is not None else None

    def worker_states(self) -> dict[str, int]:
        """How many workers are in each state."""
        out = dict.fromkeys(WORKER_STATES, 0)
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
        handle = self._handles[d.worker]
        assert handle is not None, "the engine dispatched to a worker being spawned"
        # A batch runs at one size: the model's own resolution (what its latency was profiled
        # at); an image asked for at another of the pool's sizes is resized to it after.
        wanted = [q.user.size if isinstance(q.user, Slot) else None for q in d.queries]
        native = self.profile.model(d.model).resolution
        size = native or next((w for w in wanted if w is not None), (64, 64))
        # the light images of a plan that escalates are scored on the worker
        score = [
            (q.prompt_id, q.image_seed)
            if d.score and q.path == LIGHT and q.pinned is None
            else None
            for q in d.queries
        ]
        job = BatchJob(
            d.model,
            [q.prompt or "" for q in d.queries],
            [q.image_seed for q in d.queries],
            size,
            wanted,
            score,
        )
        epoch = self._epoch.get(d.worker, 0)
        fut = handle.run(job)
        fut.add_done_callback(lambda f: self._post(self._batch_finished, d, f, epoch))

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        """From a worker thread: run fn(*args) on the loop (dropped once it has closed)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        # closed between the check and the call: the service stopped, nothing to deliver
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(fn, *args)

    def _watch(self, wid: int, handle: WorkerHandle) -> None:
        """A worker that can die on its own (a Ray actor) reports it: lost at once."""
        death = handle.death()
        if death is not None:
            epoch = self._epoch.get(wid, 0)
            death.add_done_callback(lambda f: self._post(self._died, wid, f, epoch))

    def _died(self, wid: int, fut: concurrent.futures.Future, epoch: int) -> None:
        if self._epoch.get(wid, 0) != epoch or self.engine is None:
            return  # an old life of the worker, already replaced
        detail = str(fut.exception() or "the worker exited")
        log.error("worker %d died: %s", wid, detail)
        self._out_of_service(self.now(), wid, detail, restart_after_s=0.0)

    async def _watchdog_loop(self, every_s: float = 0.5) -> None:
        """Twice a second: a batch still running after watchdog_factor x its profiled
        latency (+1 real second) is hung; its worker is killed and replaced."""
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
                    log.error("worker %d: a batch of %s hung; killing it", w.wid, w.loaded)
                    handle = self._handles[w.wid]
                    if handle is not None:
                        handle.kill()
                    # a killed Ray actor is gone and is replaced at once; an abandoned
                    # thread is replaced after the restart delay, like a failing worker
                    self._out_of_service(
                        now,
                        w.wid,
                        f"a batch of {w.loaded} hung",
                        restart_after_s=0.0 if self.backend.kills_hung else None,
                    )

    async def _membership_loop(self) -> None:
        """--workers auto: a worker for every slot the cluster's resources hold; a node that
        joins adds workers (a node that leaves takes its workers' actors with it: they are
        lost until there is room to place them again)."""
        engine, controller = self.engine, self.controller
        assert engine is not None and controller is not None
        while True:
            await asyncio.sleep(self.config.membership_s)
            try:
                slots = await asyncio.to_thread(self.backend.slots)
            except Exception as e:  # the cluster's state is unreadable for now: look again
                log.warning("cannot read the cluster's resources: %s", e)
                continue
            while slots is not None and len(engine.workers) < slots:
                wid = engine.add_worker()  # alive once its actor is ready (_back)
                self._handles.append(None)
                log.warning("the cluster grew: worker %d added", wid)
                self._respawn(wid)

    def _batch_finished(self, d: Dispatch, fut: concurrent.futures.Future, epoch: int) -> None:
        engine = self.engine
        assert engine is not None
        now = self.now()
        if self._epoch.get(d.worker, 0) != epoch:
            return  # the worker was taken out of service since: its batch is queued again
        try:
            result: BatchResult = fut.result()
        except WorkerDied as e:
            log.error("worker %d died during a batch of %s: %s", d.worker, d.model, e)
            self._out_of_service(now, d.worker, str(e), restart_after_s=0.0)
            return
        except Exception as e:
            log.exception("worker %d failed a batch of %s", d.worker, d.model)
            self._worker_failed(now, d.worker, str(e))
            return
        self._failures_in_a_row[d.worker] = 0
        for q, image, conf in zip(d.queries, result.images, result.confidences, strict=False):
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

    def _out_of_service(
        self, now: float, worker: int, detail: str, restart_after_s: float | None = None
    ) -> None:
        """Take a worker out: its batch goes back to the queue (original deadlines), the
        controller re-plans for the others, and it is replaced after `restart_after_s`
        real seconds (default: the configured restart delay)."""
        engine, controller = self.engine, self.controller
        assert engine is not None and controller is not None
        if worker in self.failed_workers:
            return
        self._epoch[worker] = self._epoch.get(worker, 0) + 1
        self.failed_workers.add(worker)
        self._run(engine.worker_lost(now, worker))
        controller.workers_changed()
        if engine.live_workers() == 0 and not self.restarting and restart_after_s != 0.0:
            engine.drain(now, DropReason.FAILED, f"no worker left ({detail})")
        if self._loop is not None:
            delay = self.config.restart_after_s if restart_after_s is None else restart_after_s
            self._loop.call_later(delay, self._restart, worker)

    def _restart(self, worker: int) -> None:
        """Replace a worker out of service: a new one (a fresh thread and executor, or a new
        actor) is spawned; it rejoins the plan once it is ready."""
        if self.engine is None or self._closed or worker not in self.failed_workers:
            return
        self.failed_workers.discard(worker)
        self._failures_in_a_row[worker] = 0
        self.restarts += 1
        log.warning("worker %d restarting", worker)
        self._respawn(worker)

    def _respawn(self, worker: int) -> None:
        """Spawn worker `worker` anew (off the loop) and bring it back when it is ready."""
        self.restarting.add(worker)
        self._handles[worker] = None
        epoch = self._epoch[worker] = self._epoch.get(worker, 0) + 1
        loop = self._loop
        assert loop is not None
        spawned = loop.run_in_executor(None, self.backend.spawn, worker)
        spawned.add_done_callback(functools.partial(self._spawned, worker, epoch))

    def _spawned(self, worker: int, epoch: int, fut: asyncio.Future) -> None:
        if self._epoch.get(worker) != epoch or self.engine is None:
            return
        if fut.exception() is not None:
            log.error("worker %d could not be spawned: %s", worker, fut.exception())
            self.restarting.discard(worker)
            self._out_of_service_again(worker, str(fut.exception()))
            return
        handle: WorkerHandle = fut.result()
        self._handles[worker] = handle
        self._watch(worker, handle)
        handle.ready().add_done_callback(lambda f: self._post(self._back, worker, f, epoch))

    def _back(self, worker: int, fut: concurrent.futures.Future, epoch: int) -> None:
        engine, controller = self.engine, self.controller
        if self._epoch.get(worker) != epoch or engine is None or controller is None:
            return
        self.restarting.discard(worker)
        if fut.exception() is not None:  # died before it was ready
            log.error("worker %d did not start: %s", worker, fut.exception())
            self._out_of_service_again(worker, str(fut.exception()))
            return
        handle = self._handles[worker]
        log.warning("worker %d is back (%s)", worker, handle.placement if handle else "?")
        self._run(engine.worker_back(self.now(), worker))
        controller.workers_changed()

    def _out_of_service_again(self, worker: int, detail: str) -> None:
        """A replacement that failed to start: tried again after the restart delay."""
        self.failed_workers.add(worker)
        if self._loop is not None:
            self._loop.call_later(self.config.restart_after_s, self._restart, worker)

    def _switch(self, worker: int) -> None:
        """A WakeUp means the worker must load its newly assigned model: do it for real."""
        engine = self.engine
        assert engine is not None
        target = engine.workers[worker].loading
        assert target is not None, "a WakeUp for a worker with nothing to load"
        handle = self._handles[worker]
        assert handle is not None, "the engine moved a worker being spawned"
        self._loading += 1
        epoch = self._epoch.get(worker, 0)
        fut = handle.load(target)
        fut.add_done_callback(lambda f: self._post(self._loaded, worker, target, f, epoch))

    def _loaded(
        self, worker: int, model: str, fut: concurrent.futures.Future, epoch: int = 0
    ) -> None:
        self._loading -= 1
        if self._epoch.get(worker, 0) != epoch:
            return  # taken out of service while loading
        try:
            seconds = fut.result()
        except WorkerDied as e:
            log.error("worker %d died loading %s: %s", worker, model, e)
            self._out_of_service(self.now(), worker, str(e), restart_after_s=0.0)
            return
        except Exception as e:
            if self.ready:  # a restarted (or re-planned) worker: out of service, retried
                log.error("worker %d could not load %s: %s", worker, model, e)
                self._out_of_service(self.now(), worker, f"could not load {model}: {e}")
                return
            # at start-up: the server stays unready and the load is retried with backoff
            # (1, 2, 4 ... 30 s) until load_timeout_s; clients and /readyz get the model's
            # name, the log the error itself (it may hold paths)
            log.error("worker %d could not load %s: %s", worker, model, e)
            self.load_errors = [
                m for m in self.load_errors if not m.startswith(f"worker {worker}:")
            ]
            self.load_errors.append(f"worker {worker}: cannot load model {model!r}")
            self.failed_workers.add(worker)
            attempt = self._load_attempts[worker] = self._load_attempts.get(worker, 0) + 1
            if self._loop is not None and not self._closed:
                delay = min(30.0, 2.0 ** (attempt - 1))
                self._loop.call_later(delay, self._retry_load, worker, epoch)
            return
        self.failed_workers.discard(worker)
        self._clear_load_error(worker)
        self.switch_seconds.append((worker, model, seconds))
        for listener in self.listeners:
            listener.on_switch(worker, model, seconds)
        self._run(self.engine.worker_ready(self.now(), worker))  # type: ignore[union-attr]
        if self._loading == 0 and not self.load_errors:
            self._set_ready()

    def _clear_load_error(self, worker: int) -> None:
        self.load_errors = [e for e in self.load_errors if not e.startswith(f"worker {worker}:")]

    def _retry_load(self, worker: int, epoch: int) -> None:
        """A start-up load failed: try it again (the engine still wants that model)."""
        engine = self.engine
        if engine is None or self._closed or self._epoch.get(worker, 0) != epoch:
            return
        if engine.workers[worker].loading is not None and self._handles[worker] is not None:
            log.warning("worker %d: retrying its model load", worker)
            self._switch(worker)

    async def _startup_deadline(self) -> None:
        """Give up when the models are not loaded after load_timeout_s real seconds: an
        orchestrator should see the process fail, not a server that stays unready."""
        await asyncio.sleep(self.config.load_timeout_s)
        if not self.ready:
            self.startup_failed = True
            log.error(
                "the models did not load within %gs (--load-timeout); giving up",
                self.config.load_timeout_s,
            )
            if self.on_failed is not None:
                self.on_failed()

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
