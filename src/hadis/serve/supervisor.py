"""The live driver's workers: carrying out the engine's commands on them, and keeping them
in service.

A Dispatch becomes a BatchJob on the worker's handle (workers/base.py), a LoadModel a
model load; their futures report back on the event loop. A worker that fails
QUARANTINE_AFTER batches in a row, dies (a Ray actor), hangs past the watchdog or cannot
load its model after start-up is taken out of service: its batch goes back to the queues
(Engine.worker_lost), the controller re-plans for the workers left, and a replacement is
spawned after the restart delay (at once for a dead or killed actor). Results of a worker's
old life are ignored by epoch. Everything here runs on the event loop thread, except the
backend's blocking calls (spawn, slots), which run in threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import logging
from typing import TYPE_CHECKING

from hadis.core import Dispatch, DropReason
from hadis.core.snapshot import EngineSnapshot, WorkerView
from hadis.workers.base import BatchJob, BatchResult, WorkerDied, WorkerHandle

if TYPE_CHECKING:
    from hadis.serve.service import LiveService

log = logging.getLogger(__name__)
QUARANTINE_AFTER = 3  # batches failed in a row before a worker is taken out of service


class Supervisor:
    def __init__(self, service: LiveService) -> None:
        self.service = service
        self.handles: list[WorkerHandle | None] = []  # None: being spawned
        self.switch_seconds: list[tuple[int, str, float]] = []  # (worker, model, real s)
        self.load_errors: list[str] = []
        self.failed: set[int] = set()  # load failed, or out of service (lost)
        self.restarting: set[int] = set()  # spawned again, not yet ready (or placed)
        self.restarts = 0
        self.loading = 0  # model loads under way
        self.closed = False  # stopped: no worker is replaced any more
        self._failures_in_a_row: dict[int, int] = {}  # batches failed since the last success
        self._load_attempts: dict[int, int] = {}
        # bumped when a worker is taken out of service: late results of its old life are
        # ignored (its thread may still finish a hung batch after the restart)
        self._epoch: dict[int, int] = {}

    # ------------------------------------------------------------------ start, stop
    async def spawn_all(self, n: int) -> None:
        """The first workers; spawning may block (a Ray actor's name, a first import)."""
        backend = self.service.backend
        handles = await asyncio.to_thread(lambda: [backend.spawn(i) for i in range(n)])
        for wid, handle in enumerate(handles):
            self.handles.append(handle)
            self._watch(wid, handle)

    async def close(self) -> None:
        self.closed = True
        for wid in range(len(self.handles)):  # what the workers still report is ignored
            self._epoch[wid] = self._epoch.get(wid, 0) + 1
        await asyncio.to_thread(self.service.backend.close)

    # ------------------------------------------------------------------ views
    def worker_state(self, w: WorkerView) -> str:
        """busy, switching (loading a model), idle, restarting (replaced, its new process
        not ready or not placed yet), or failed (out of service)."""
        if w.id in self.restarting:
            return "restarting"
        if w.id in self.failed:
            return "failed"
        return w.status  # the engine's own: busy, switching or idle

    def placement(self, wid: int) -> str | None:
        """Where a worker runs (e.g. a Ray node id); None while it is being spawned."""
        handle = self.handles[wid] if wid < len(self.handles) else None
        return handle.placement if handle is not None else None

    def annotate(self, snapshot: EngineSnapshot) -> EngineSnapshot:
        """The engine's snapshot with each worker's state and placement as seen here."""
        workers = tuple(
            dataclasses.replace(w, state=self.worker_state(w), placement=self.placement(w.id))
            for w in snapshot.workers
        )
        return dataclasses.replace(snapshot, workers=workers)

    # ------------------------------------------------------------------ commands
    def dispatch(self, d: Dispatch) -> None:
        service = self.service
        handle = self.handles[d.worker]
        assert handle is not None, "the engine dispatched to a worker being spawned"
        # A batch runs at one size: the model's own resolution (what its latency was profiled
        # at); an image asked for at another of the pool's sizes is resized to it after.
        wanted = [service.requested_size(q) for q in d.queries]
        native = service.profile.model(d.model).resolution
        size = native or next((w for w in wanted if w is not None), (64, 64))
        job = BatchJob(
            d.model,
            [q.prompt or "" for q in d.queries],
            [q.image_seed for q in d.queries],
            size,
            wanted,
            # the images the engine may escalate are scored on the worker
            [
                (q.prompt_id, q.image_seed) if scored else None
                for q, scored in zip(d.queries, d.scored(), strict=True)
            ],
        )
        epoch = self._epoch.get(d.worker, 0)
        fut = handle.run(job)
        fut.add_done_callback(lambda f: service.post(self._batch_finished, d, f, epoch))

    def load(self, worker: int, model: str) -> None:
        """Load the model the engine moved the worker to."""
        handle = self.handles[worker]
        assert handle is not None, "the engine moved a worker being spawned"
        self.loading += 1
        epoch = self._epoch.get(worker, 0)
        fut = handle.load(model)
        fut.add_done_callback(lambda f: self.service.post(self._loaded, worker, model, f, epoch))

    # ------------------------------------------------------------------ results
    def _batch_finished(self, d: Dispatch, fut: concurrent.futures.Future, epoch: int) -> None:
        service = self.service
        if self._epoch.get(d.worker, 0) != epoch:
            return  # the worker was taken out of service since: its batch is queued again
        now = service.now()
        try:
            result: BatchResult = fut.result()
        except WorkerDied as e:
            log.error("worker %d died during a batch of %s: %s", d.worker, d.model, e)
            self.out_of_service(now, d.worker, str(e), restart_after_s=0.0)
            return
        except Exception as e:
            log.exception("worker %d failed a batch of %s", d.worker, d.model)
            self._batch_failed(now, d.worker, str(e))
            return
        n = len(d.queries)
        if len(result.images) != n or len(result.confidences) != n:
            detail = (
                f"the worker returned {len(result.images)} images and "
                f"{len(result.confidences)} scores for a batch of {n}"
            )
            log.error("worker %d: %s", d.worker, detail)
            self._batch_failed(now, d.worker, detail)
            return
        self._failures_in_a_row[d.worker] = 0
        service.batch_done(now, d, result)

    def _batch_failed(self, now: float, worker: int, detail: str) -> None:
        """A batch failed: its queries are retried (Engine.fail_batch). A worker that fails
        QUARANTINE_AFTER batches in a row is taken out of service instead."""
        n = self._failures_in_a_row.get(worker, 0) + 1
        self._failures_in_a_row[worker] = n
        if n < QUARANTINE_AFTER:
            self.service.run(self.service.engine.fail_batch(now, worker, detail))
            return
        log.error("worker %d failed %d batches in a row; taking it out of service", worker, n)
        self.out_of_service(now, worker, detail)

    def _loaded(
        self, worker: int, model: str, fut: concurrent.futures.Future, epoch: int = 0
    ) -> None:
        service = self.service
        self.loading -= 1
        if self._epoch.get(worker, 0) != epoch:
            return  # taken out of service while loading
        try:
            seconds = fut.result()
        except WorkerDied as e:
            log.error("worker %d died loading %s: %s", worker, model, e)
            self.out_of_service(service.now(), worker, str(e), restart_after_s=0.0)
            return
        except Exception as e:
            log.error("worker %d could not load %s: %s", worker, model, e)
            if service.ready:  # a restarted (or re-planned) worker: out of service, retried
                self.out_of_service(service.now(), worker, f"could not load {model}: {e}")
                return
            # at start-up: the server stays unready and the load is retried with backoff
            # (1, 2, 4 ... 30 s) until load_timeout_s; clients and /readyz get the model's
            # name, the log the error itself (it may hold paths)
            self._clear_load_error(worker)
            self.load_errors.append(f"worker {worker}: cannot load model {model!r}")
            self.failed.add(worker)
            attempt = self._load_attempts[worker] = self._load_attempts.get(worker, 0) + 1
            if not self.closed:
                delay = min(30.0, 2.0 ** (attempt - 1))
                service.loop.call_later(delay, self._retry_load, worker, epoch)
            return
        self.failed.discard(worker)
        self._clear_load_error(worker)
        self.switch_seconds.append((worker, model, seconds))
        service.model_loaded(worker, model, seconds)

    def _clear_load_error(self, worker: int) -> None:
        self.load_errors = [e for e in self.load_errors if not e.startswith(f"worker {worker}:")]

    def _retry_load(self, worker: int, epoch: int) -> None:
        """A start-up load failed: try it again (the engine still wants that model)."""
        if self.closed or self._epoch.get(worker, 0) != epoch:
            return
        target = self.service.engine.workers[worker].loading
        if target is not None and self.handles[worker] is not None:
            log.warning("worker %d: retrying its model load", worker)
            self.load(worker, target)

    # ------------------------------------------------------------------ out of service
    def _watch(self, wid: int, handle: WorkerHandle) -> None:
        """A worker that can die on its own (a Ray actor) reports it: lost at once."""
        death = handle.death()
        if death is not None:
            epoch = self._epoch.get(wid, 0)
            death.add_done_callback(lambda f: self.service.post(self._died, wid, f, epoch))

    def _died(self, wid: int, fut: concurrent.futures.Future, epoch: int) -> None:
        if self._epoch.get(wid, 0) != epoch:
            return  # an old life of the worker, already replaced
        detail = str(fut.exception() or "the worker exited")
        log.error("worker %d died: %s", wid, detail)
        self.out_of_service(self.service.now(), wid, detail, restart_after_s=0.0)

    def out_of_service(
        self, now: float, worker: int, detail: str, restart_after_s: float | None = None
    ) -> None:
        """Take a worker out: its batch goes back to the queue (original deadlines), the
        controller re-plans for the others, and it is replaced after `restart_after_s`
        real seconds (default: the configured restart delay)."""
        service = self.service
        engine = service.engine
        if worker in self.failed:
            return
        self._epoch[worker] = self._epoch.get(worker, 0) + 1
        self.failed.add(worker)
        service.run(engine.worker_lost(now, worker))
        service.controller.workers_changed()
        if engine.live_workers() == 0 and not self.restarting and restart_after_s != 0.0:
            engine.drain(now, DropReason.FAILED, f"no worker left ({detail})")
        delay = service.config.restart_after_s if restart_after_s is None else restart_after_s
        service.loop.call_later(delay, self._restart, worker)

    def _restart(self, worker: int) -> None:
        """Replace a worker out of service: a new one (a fresh thread and executor, or a new
        actor) is spawned; it rejoins the plan once it is ready."""
        if self.closed or worker not in self.failed:
            return
        self.failed.discard(worker)
        self._failures_in_a_row[worker] = 0
        self.restarts += 1
        log.warning("worker %d restarting", worker)
        self.respawn(worker)

    def respawn(self, worker: int) -> None:
        """Spawn worker `worker` anew (off the loop) and bring it back when it is ready."""
        if worker == len(self.handles):
            self.handles.append(None)
        self.restarting.add(worker)
        self.handles[worker] = None
        epoch = self._epoch[worker] = self._epoch.get(worker, 0) + 1
        spawned = self.service.loop.run_in_executor(None, self.service.backend.spawn, worker)
        spawned.add_done_callback(functools.partial(self._spawned, worker, epoch))

    def _spawned(self, worker: int, epoch: int, fut: asyncio.Future) -> None:
        if self._epoch.get(worker) != epoch or self.closed:
            return
        if fut.exception() is not None:
            log.error("worker %d could not be spawned: %s", worker, fut.exception())
            self.restarting.discard(worker)
            self._out_of_service_again(worker)
            return
        handle: WorkerHandle = fut.result()
        self.handles[worker] = handle
        self._watch(worker, handle)
        handle.ready().add_done_callback(lambda f: self.service.post(self._back, worker, f, epoch))

    def _back(self, worker: int, fut: concurrent.futures.Future, epoch: int) -> None:
        if self._epoch.get(worker) != epoch or self.closed:
            return
        self.restarting.discard(worker)
        if fut.exception() is not None:  # died before it was ready
            log.error("worker %d did not start: %s", worker, fut.exception())
            self._out_of_service_again(worker)
            return
        handle = self.handles[worker]
        log.warning("worker %d is back (%s)", worker, handle.placement if handle else "?")
        service = self.service
        service.run(service.engine.worker_back(service.now(), worker))
        service.controller.workers_changed()

    def _out_of_service_again(self, worker: int) -> None:
        """A replacement that failed to start: tried again after the restart delay."""
        self.failed.add(worker)
        self.service.loop.call_later(self.service.config.restart_after_s, self._restart, worker)

    # ------------------------------------------------------------------ loops
    async def watchdog_loop(self, every_s: float = 0.5) -> None:
        """Twice a second: a batch still running after watchdog_factor x its profiled
        latency (+1 real second) is hung; its worker is killed and replaced."""
        service = self.service
        cfg = service.config
        while True:
            await asyncio.sleep(every_s)
            now = service.now()
            for w in service.engine.workers:
                if not (w.alive and w.busy and w.running and w.loaded):
                    continue
                expected = service.profile.model(w.loaded).batch_latency_s(len(w.running))
                if now - w.started_s > expected * cfg.watchdog_factor + 1.0 / cfg.time_scale:
                    log.error("worker %d: a batch of %s hung; killing it", w.wid, w.loaded)
                    handle = self.handles[w.wid]
                    if handle is not None:
                        handle.kill()
                    # a killed Ray actor is gone and is replaced at once; an abandoned
                    # thread is replaced after the restart delay, like a failing worker
                    self.out_of_service(
                        now,
                        w.wid,
                        f"a batch of {w.loaded} hung",
                        restart_after_s=0.0 if service.backend.kills_hung else None,
                    )

    async def membership_loop(self) -> None:
        """--workers auto: a worker for every slot the cluster's resources hold; a node that
        joins adds workers (a node that leaves takes its workers' actors with it: they are
        lost until there is room to place them again)."""
        service = self.service
        engine = service.engine
        while True:
            await asyncio.sleep(service.config.membership_s)
            try:
                slots = await asyncio.to_thread(service.backend.slots)
            except Exception as e:  # the cluster's state is unreadable for now: look again
                log.warning("cannot read the cluster's resources: %s", e)
                continue
            while slots is not None and len(engine.workers) < slots:
                wid = engine.add_worker()  # alive once its actor is ready (_back)
                log.warning("the cluster grew: worker %d added", wid)
                self.respawn(wid)
