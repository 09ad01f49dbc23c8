"""The live driver: the engine and the controller on a real clock.

Everything that touches the Engine or the Controller runs on the asyncio loop thread;
workers (threads of this process, or Ray actors: workers/base.py) only run executors and
the discriminator, one per device slot, and their futures hand results back with
`call_soon_threadsafe` (serve/supervisor.py carries out the engine's commands on them and
keeps them in service). The engine's clock is in profile seconds: real elapsed seconds
divided by `time_scale` (1.0 for real models), so the SLO, re-plan period and switch delays
keep the profile's units. Planning runs in a thread under a timeout; if it fails or times
out the last plan stays. The HTTP layer (serve/api.py) sees this class through
`ImageService` (serve/protocol.py): submit, cancel, snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hadis.core import (
    DROPPED,
    Dispatch,
    DropReason,
    EngineSnapshot,
    Plan,
    Query,
    RunConfig,
)
from hadis.engine import Controller, Engine
from hadis.errors import HadisError
from hadis.planner import get_policy
from hadis.profiles import Profile
from hadis.routing import Discriminator, Router
from hadis.routing.reference import reference_prompt_id
from hadis.serve.admission import Rejected, check_paths, check_queue
from hadis.serve.listener import ServiceListener
from hadis.serve.supervisor import QUARANTINE_AFTER, Supervisor
from hadis.workers.base import BatchResult, ThreadBackend, WorkerBackend
from hadis.workers.executors import Executor

__all__ = ["LiveService", "Outcome", "Rejected", "ServeConfig", "ServiceSnapshot", "Slot"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeConfig(RunConfig):
    """A run's settings (RunConfig, in profile seconds) and the server's.
    initial_demand_qps None: LIVE_INITIAL_DEMAND_QPS."""

    workers: int = 1
    policy: str = "hadis"
    time_scale: float = 1.0  # real seconds per profile second
    max_queue: int = 1000  # queued queries beyond which new requests get 429
    max_n: int = 4  # images per request
    admission: bool = True  # 429 when the queue is full or the SLO cannot be met
    plan_timeout_s: float = 5.0  # real seconds
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
        super().__post_init__()
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


# Demand the server's first plan assumes when the run gives none (ServeConfig.
# initial_demand_qps): low, so it starts on quality; the first tick measures the real rate.
LIVE_INITIAL_DEMAND_QPS = 0.5


@dataclass(frozen=True, slots=True)
class ServiceSnapshot:
    """What the HTTP layer, the dashboard and the metrics read: the engine's snapshot with
    each worker's state and placement, and the driver's own state."""

    engine: EngineSnapshot
    ready: bool
    demand_qps: float
    load_errors: tuple[str, ...]
    switch_seconds: tuple[tuple[int, str, float], ...]  # the last model loads (real s)

    @property
    def plan(self) -> Plan | None:
        return self.engine.plan


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
        self.engine = Engine(
            profile,
            config.workers,
            # a query is retried as often as a worker may fail before its quarantine, so
            # one bad worker cannot fail a request (it may still miss its deadline: 504)
            config.engine_config(max_retries=QUARANTINE_AFTER),
            router,
            discriminator,
            self,
        )
        self.controller = Controller(
            self.engine,
            get_policy(config.policy, **config.policy_options),
            config.workers,
            config.controller_config(LIVE_INITIAL_DEMAND_QPS),
        )
        self.workers = Supervisor(self)
        self._query_of: dict[asyncio.Future, Query] = {}  # queued or running, by future
        self._plan_reason = "start"
        self._plan_key: tuple | None = None
        self._ids = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []
        self._t0 = time.monotonic()

    # ------------------------------------------------------------------ lifecycle
    def now(self) -> float:
        """Engine time in profile seconds."""
        return (time.monotonic() - self._t0) / self.config.time_scale

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "the service has not started"
        return self._loop

    async def start(self) -> None:
        cfg = self.config
        self._loop = asyncio.get_running_loop()
        self._t0 = time.monotonic()
        await self.workers.spawn_all(cfg.workers)
        self.run(self.controller.start(self.now()))
        self._tasks.append(asyncio.create_task(self._control_loop()))
        self._tasks.append(asyncio.create_task(self.workers.watchdog_loop()))
        if cfg.elastic:
            self._tasks.append(asyncio.create_task(self.workers.membership_loop()))
        if cfg.load_timeout_s > 0:
            self._tasks.append(asyncio.create_task(self._startup_deadline()))
        self._check_ready()

    def _check_ready(self) -> None:
        if self.ready or self.workers.loading or self.workers.load_errors:
            return
        self.ready = True
        if self.on_ready is not None:
            self.on_ready()

    async def stop(self) -> None:
        """Stop accepting work; every queued query ends with an explicit error."""
        self.ready = False
        for task in self._tasks:
            task.cancel()
        if self._loop is not None:
            self.engine.drain(self.now(), DropReason.SHUTDOWN)
        running = [q.user for w in self.engine.workers for q in w.running]
        await self.workers.close()
        for slot in running:
            if isinstance(slot, Slot) and not slot.future.done():
                slot.future.set_result(None)

    # ------------------------------------------------------------------ requests
    def admit(self, n: int) -> None:
        """Raise Rejected when the service cannot take n more queries at all (not started,
        queue full); whether their path can meet the SLO is checked in `submit`."""
        if self._loop is None or self.engine.plan is None:
            raise Rejected("not started", 1.0)
        if not self.config.admission:
            return
        rejected = check_queue(self.engine.snapshot(self.now(), workers=False), n,
                               self.config.max_queue)  # fmt: skip
        if rejected is not None:
            self.controller.observe_arrival(self.now(), n)  # demand is what arrives
            raise rejected

    def retry_after_real_s(self, err: Rejected) -> int:
        seconds = err.retry_after_s * self.config.time_scale
        return max(1, math.ceil(min(seconds, 3600.0)))

    async def score(self, prompt: str) -> float:
        """The prompt's router score; an expensive router is run in a thread so that the
        loop never waits on it."""
        pid = reference_prompt_id(prompt)
        if self.router.expensive:
            return await asyncio.to_thread(self.router.score, pid, prompt)
        return self.router.score(pid, prompt)

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
        engine = self.engine
        loop = self.loop
        now = self.now()
        pid = reference_prompt_id(prompt)
        if router_score is None and engine.routes_by_score:
            router_score = self.router.score(pid, prompt)
        base_seed = seed if seed is not None else next(self._ids) * 7919
        queries = [
            Query(next(self._ids), now, pid, prompt, base_seed + k, model, router_score)
            for k in range(n)
        ]
        self.controller.observe_arrival(now, n)  # admitted or not: demand is what arrives
        for q in queries:
            engine.route(q)
        if self.config.admission:
            rejected = check_paths(
                engine.snapshot(now, workers=False),
                dict.fromkeys(q.model for q in queries),
                self.profile,
                self.config.slo_s,
            )
            if rejected is not None:
                raise rejected
        futures = []
        cmds = []
        for q in queries:
            slot = Slot(loop.create_future(), size)
            q.user = slot
            futures.append(slot.future)
            self._query_of[slot.future] = q
            cmds.extend(engine.enqueue(now, q))
        for listener in self.listeners:
            listener.on_arrival(now, n)
        self.run(cmds)
        return futures

    def cancel(self, futures: list[asyncio.Future]) -> int:
        """The client gave up (deadline passed, connection closed): queued queries of
        these futures leave their queues now; returns how many were freed."""
        now, freed = self.now(), 0
        for fut in futures:
            q = self._query_of.pop(fut, None)
            if q is not None and self.engine.cancel(now, q):
                freed += 1
        return freed

    def snapshot(self) -> ServiceSnapshot:
        return ServiceSnapshot(
            engine=self.workers.annotate(self.engine.snapshot(self.now())),
            ready=self.ready,
            demand_qps=self.controller.demand_qps,
            load_errors=tuple(self.workers.load_errors),
            switch_seconds=tuple(self.workers.switch_seconds[-20:]),
        )

    def info(self) -> dict[str, Any]:
        """What the service runs (names), for /v1/plan and logs."""
        return {
            "profile": self.profile.name,
            "policy": self.config.policy,
            "router": self.router.name,
            "discriminator": self.discriminator.name,
            "executor": self.executor_name,
            "backend": self.backend.name,
            "time_scale": self.config.time_scale,
            "slo_s": self.config.slo_s,
        }

    @property
    def plan(self) -> Plan | None:
        return self.engine.plan

    @staticmethod
    def requested_size(q: Query) -> tuple[int, int] | None:
        return q.user.size if isinstance(q.user, Slot) else None

    # ------------------------------------------------------------------ engine events
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

    # ------------------------------------------------------------------ commands
    def run(self, commands: list) -> None:
        """Carry out the engine's commands on the workers."""
        for c in commands:
            if type(c) is Dispatch:
                self.workers.dispatch(c)
            else:
                self.workers.load(c.worker, c.model)

    def post(self, fn: Callable[..., None], *args: Any) -> None:
        """From a worker thread: run fn(*args) on the loop (dropped once it has closed)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        # closed between the check and the call: the service stopped, nothing to deliver
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(fn, *args)

    def batch_done(self, now: float, d: Dispatch, result: BatchResult) -> None:
        """A worker's batch came back: its images and confidences go to the engine."""
        for q, image in zip(d.queries, result.images, strict=True):
            q.image = image
        self.run(self.engine.batch_done(now, d.worker, result.confidences))

    def model_loaded(self, worker: int, model: str, seconds: float) -> None:
        last = self.engine.workers[worker].kept.last
        found = "disk" if last is None else last.value
        for listener in self.listeners:
            listener.on_switch(worker, model, seconds, found)
        self.run(self.engine.worker_ready(self.now(), worker))
        self._check_ready()

    # ------------------------------------------------------------------ loops
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

    async def _control_loop(self) -> None:
        controller = self.controller
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
                controller.gave_up(f"timed out after {self.config.plan_timeout_s:.1f}s")
                continue
            if plan is not None:
                self._plan_reason = controller.reason
                self.run(controller.adopt(self.now(), plan))
