"""The data plane: an event-driven core with no clock of its own.

Drivers (the simulator's virtual clock, the server's real one) call
  submit(now, query)                     a query arrives (scored by the router already)
  batch_done(now, worker, confidences)   a worker finished the batch it was given
  worker_ready(now, worker)              a model load finished (asked for by LoadModel)
  apply_plan(now, plan)                  the controller chose a new plan
and each returns the commands to carry out (hadis.core.commands): Dispatch (run a batch
now, scoring the images it says) and LoadModel. The engine never runs a model, a router or
a discriminator: scores come in with the queries and the batch results.

Rules: the router sends the top-r fraction of prompts straight to heavy, the rest queue for
light; each model's queue is served earliest-deadline-first (one SLO for all, so oldest
arrival first: an escalated query goes ahead of later direct-heavy ones); a free worker
takes up to its batch size at once (greedy, no waiting); a query whose estimated finish
exceeds drop_factor x SLO is dropped before execution; after a light batch the
discriminator escalates the bottom-d fraction to the heavy queue. Workers the plan doesn't
use go idle; a worker that must load another model serves nothing until it is loaded.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from hadis.core.commands import Command, Dispatch, LoadModel, may_escalate
from hadis.core.config import EngineConfig
from hadis.core.cuts import DiscriminatorCut, RouterCut
from hadis.core.plan import Plan
from hadis.core.query import (
    DIRECT,
    DROPPED,
    ESCALATED,
    LIGHT,
    PENDING,
    SERVED,
    DropReason,
    Query,
)
from hadis.core.residency import Residency, switch_seconds
from hadis.core.snapshot import EngineSnapshot, WorkerView
from hadis.errors import HadisError
from hadis.profiles import Profile

__all__ = ["Engine", "EngineConfig", "EngineListener", "NullListener"]


_NOTHING: list[Command] = []  # shared empty result; callers only iterate over it


class EngineListener(Protocol):
    """Receives engine events (metrics, logging). Called synchronously; keep it cheap."""

    def on_query_done(self, q: Query) -> None: ...

    def on_batch(self, worker: int, model: str, size: int, start_s: float, end_s: float) -> None:
        """A batch finished (called at its end)."""
        ...

    def on_plan(self, now: float, plan: Plan) -> None: ...


class NullListener:
    def on_query_done(self, q: Query) -> None:
        pass

    def on_batch(self, worker: int, model: str, size: int, start_s: float, end_s: float) -> None:
        pass

    def on_plan(self, now: float, plan: Plan) -> None:
        pass


class Worker:
    """One device slot. `assigned` is what the plan wants, `loaded` what is on the device."""

    __slots__ = (
        "wid",
        "assigned",
        "loaded",
        "loading",
        "batch",
        "busy",
        "switching",
        "running",
        "started_s",
        "scored",
        "kept",
        "alive",
    )

    def __init__(self, wid: int, kept: Residency) -> None:
        self.wid = wid
        self.assigned: str | None = None
        self.loaded: str | None = None
        self.loading: str | None = None  # model being switched to
        self.batch = 1
        self.busy = False
        self.switching = False
        self.running: list[Query] = []
        self.started_s = 0.0
        self.scored = False  # its running batch's images are scored (it may escalate)
        self.kept = kept  # the models it keeps on its device and in host memory
        self.alive = True  # False: lost (died, quarantined) until worker_back


class Engine:
    def __init__(
        self,
        profile: Profile,
        workers: int,
        config: EngineConfig,
        router: RouterCut,
        discriminator: DiscriminatorCut,
        listener: EngineListener | None = None,
    ) -> None:
        if workers < 1:
            raise HadisError(f"workers must be >= 1, got {workers}")
        self.profile = profile
        self.config = config
        self.router = router
        self.discriminator = discriminator
        self.listener = listener or NullListener()
        self.workers = [Worker(i, Residency(profile, config.host_cache)) for i in range(workers)]
        # per model: heap of (arrival_s, qid, query), i.e. earliest deadline first
        self.queues: dict[str, list[tuple[float, int, Query]]] = {
            m.name: [] for m in profile.models
        }
        self.free: dict[str, list[int]] = {m.name: [] for m in profile.models}
        self.enqueued: dict[str, int] = dict.fromkeys(self.queues, 0)  # arrivals per model
        self.plan: Plan | None = None
        self._rng = random.Random(config.seed)
        self._latency = {m.name: m.latency_table for m in profile.models}
        self._variants = {m.name: m for m in profile.models}
        self._ready: set[str] | None = None  # models with a loaded worker (None: recompute)
        self._heavy_wait_ok = True  # a query may wait for the heavy model's load
        self._router_cut = float("inf")
        self._disc_cut = float("-inf")
        self._drop_after_s = config.drop_factor * config.slo_s
        self._split: tuple[list[str], list[float]] | None = None
        # pairs with router-only rows (d = 0): a random split over one is scored as them
        self._router_only_pairs = tuple(
            dict.fromkeys(c.pair for c in profile.configs if c.d == 0 and 0 < c.r < 1)
        )
        self._split_pair: tuple[str, str] | None = None
        self._scored_model: str | None = None  # the light model whose images may escalate
        self._routes = False  # the plan's router sends some queries straight to heavy
        self._pair: tuple[str, ...] = ()

    # ------------------------------------------------------------------ arrivals
    @property
    def routes_by_score(self) -> bool:
        """The plan in force routes queries by their router score: a driver must score
        each query before it submits it (Query.router_score)."""
        return self._routes and math.isfinite(self._router_cut)

    def submit(self, now: float, q: Query) -> list[Command]:
        """A query arrives: route it, and start batches on free workers."""
        self.route(q)
        return self.enqueue(now, q)

    def route(self, q: Query) -> str:
        """Decide where a new query enters (its pair, path and model) without queueing it:
        a driver may turn it away on that model's backlog (then `enqueue` is not called)."""
        if self.plan is None:
            raise HadisError("no plan applied yet: call apply_plan first")
        q.model = self._route(q)
        return q.model

    def enqueue(self, now: float, q: Query) -> list[Command]:
        """A routed query joins its model's queue; batches start on free workers."""
        self._enqueue(q, q.model)
        return self._fill(now, q.model)

    def _route(self, q: Query, migrating: bool = False) -> str:
        plan = self.plan
        assert plan is not None
        if q.pinned is not None:
            if plan.gpus.get(q.pinned):
                q.pair, q.path = (q.pinned,), LIGHT
                return q.pinned
            q.pinned = None  # the plan no longer runs that model: route it like any other
        if self._split is not None:
            names, cum = self._split
            model = names[bisect.bisect_right(cum, self._rng.random() * cum[-1])]
            if self._split_pair is not None:  # scored as the pair's router-only mix
                q.pair = self._split_pair
                q.path = LIGHT if model == self._split_pair[0] else DIRECT
            else:
                q.pair, q.path = (model,), LIGHT
        else:
            q.pair = self._pair
            if self._routes:
                score = q.router_score
                if score is None and math.isfinite(self._router_cut):
                    if not migrating:
                        raise HadisError(
                            f"query {q.qid} has no router score: the plan routes by score, "
                            "so the driver must score queries before submitting them"
                        )
                    # it arrived under a plan that did not route (unscored): it stays light
                    score = -math.inf
                elif score is None:  # the cut sends all (-inf) or none (+inf) to heavy
                    score = 0.0
                if score > self._router_cut and self._heavy_answers(plan):
                    model, q.path = plan.heavy, DIRECT  # type: ignore[assignment]
                else:
                    model, q.path = plan.light, LIGHT
            else:
                model, q.path = plan.light, LIGHT
        return model

    def _heavy_answers(self, plan: Plan) -> bool:
        """The plan's heavy model takes queries now: it has a loaded worker, or the light
        model has none either, or a query can wait for its load and still make the SLO.
        Otherwise, while every heavy worker is still loading, a query the router (or the
        discriminator) would send there is answered by the light model."""
        heavy = plan.heavy
        if heavy is None:
            return False
        return self._heavy_wait_ok or self.ready(heavy) or not self.ready(plan.light)

    def _can_wait_for_heavy(self, plan: Plan) -> bool:
        """A load of the plan's heavy model (from disk) plus its planned stage fits the SLO."""
        if plan.heavy is None:
            return True
        paths = plan.path_latency_s
        if "direct-heavy" in paths:
            stage = paths["direct-heavy"]
        else:
            stage = paths.get("escalated", 0.0) - paths.get("light", 0.0)
        load = self._variants[plan.heavy].switch_s(False, self.config.switch_delay_s)
        return load + stage <= self.config.slo_s

    def _enqueue(self, q: Query, model: str) -> None:
        q.model = model
        heapq.heappush(self.queues[model], (q.arrival_s, q.qid, q))
        self.enqueued[model] += 1

    # ------------------------------------------------------------------ batching
    def _fill(self, now: float, model: str) -> list[Command]:
        """Give queued work of `model` to its free workers (greedy: no waiting)."""
        free, queue = self.free[model], self.queues[model]
        if not free or not queue:
            return _NOTHING
        out: list[Command] = []
        while free and queue:
            w = self.workers[free.pop()]
            batch = self._take(now, model, queue, w.batch)
            if not batch:
                free.append(w.wid)
                break
            w.busy = True
            w.running = batch
            w.started_s = now
            w.scored = model == self._scored_model
            for q in batch:
                if q.start_s is None:
                    q.start_s = now
            out.append(Dispatch(w.wid, model, batch, w.scored))
        return out

    def _take(
        self, now: float, model: str, queue: list[tuple[float, int, Query]], size: int
    ) -> list[Query]:
        n = len(queue)
        latency = self._latency[model][size if size < n else n]
        limit = self._drop_after_s  # since arrival
        batch: list[Query] = []
        pop = heapq.heappop
        while queue and len(batch) < size:
            q = pop(queue)[2]
            if now + latency - q.arrival_s > limit:
                self._drop(now, q, DropReason.LATE)
            else:
                batch.append(q)
        return batch

    def _drop(self, now: float, q: Query, reason: DropReason, detail: str = "") -> None:
        q.status = DROPPED
        q.drop_reason = reason
        q.drop_detail = detail
        q.finish_s = now
        self.listener.on_query_done(q)

    def _serve(self, now: float, q: Query) -> None:
        q.status = SERVED
        q.finish_s = now
        self.listener.on_query_done(q)

    # ------------------------------------------------------------------ completions
    def batch_done(
        self, now: float, worker: int, confidences: Sequence[float | None] | None = None
    ) -> list[Command]:
        """The worker's batch finished: escalate or serve each query, then refill.

        confidences: the discriminator's score of each query's image, in batch order, for
        those the Dispatch asked to score (None elsewhere); a driver may instead have set
        Query.confidence itself."""
        w = self.workers[worker]
        batch = w.running
        if confidences is not None:
            for q, conf in zip(batch, confidences, strict=True):
                if conf is not None:
                    q.confidence = conf
        plan = self.plan
        assert plan is not None
        # nothing to escalate without a heavy model or with d = 0 (single model, split), or
        # from a batch that was not scored (dispatched under a plan that did not escalate)
        escalates = w.scored and self._split is None and self._disc_cut > -math.inf
        heavy = plan.heavy if escalates else None
        model = w.loaded
        if heavy is not None and heavy != model:
            missing = next((q for q in batch if may_escalate(q) and q.confidence is None), None)
            if missing is not None:
                raise HadisError(
                    f"query {missing.qid} of a batch that may escalate has no confidence: "
                    "the driver must score the images Dispatch.scored() names"
                )
        w.running, w.busy = [], False
        self.listener.on_batch(worker, model or "", len(batch), w.started_s, now)
        done = self.listener.on_query_done  # _serve, inlined below: the hot path
        if heavy is None or heavy == model:
            for q in batch:
                q.status, q.finish_s = SERVED, now
                done(q)
            return self._release(now, w)
        cut = self._disc_cut if self._heavy_answers(plan) else -math.inf
        escalated = False
        for q in batch:
            if may_escalate(q) and q.confidence < cut:  # type: ignore[operator]
                q.path = ESCALATED
                self._enqueue(q, heavy)
                escalated = True
                continue
            q.status, q.finish_s = SERVED, now
            done(q)
        if escalated:
            out = self._fill(now, heavy)
            if out:
                return out + self._release(now, w)
        return self._release(now, w)

    def cancel(self, now: float, q: Query, reason: DropReason = DropReason.CANCELLED) -> bool:
        """End a query that waits in a queue (its client gave up): its slot is freed at
        once. A query already in a running batch, or ended, is left alone (False)."""
        if q.status != PENDING:
            return False
        queue = self.queues.get(q.model, [])
        for i, entry in enumerate(queue):
            if entry[2] is q:
                queue[i] = queue[-1]
                queue.pop()
                heapq.heapify(queue)
                self._drop(now, q, reason)
                return True
        return False

    def fail_batch(self, now: float, worker: int, detail: str) -> list[Command]:
        """The executor failed the worker's batch: each query goes back to its queue (with
        its original deadline) up to max_retries times, then ends FAILED with `detail`."""
        w = self.workers[worker]
        batch, w.running, w.busy = w.running, [], False
        retry = []
        for q in batch:
            q.failures += 1
            if q.failures <= self.config.max_retries:
                retry.append(q)
            else:
                self._drop(now, q, DropReason.FAILED, detail)
        # requeue first, while this worker is not free: a retry prefers another worker
        out = self._requeue(now, retry)
        return out + self._release(now, w)

    def worker_lost(self, now: float, worker: int) -> list[Command]:
        """A worker left (its process died, its node was lost, the driver quarantined it):
        its running batch goes back to the queues with the queries' original deadlines and
        it gets no work until `worker_back`. The plan in force may now want more workers
        than are alive: the models keep what is left until the controller re-plans."""
        w = self.workers[worker]
        if not w.alive:
            return _NOTHING
        w.alive = False
        self._ready = None
        batch, w.running, w.busy = w.running, [], False
        if w.assigned is not None and w.wid in self.free[w.assigned]:
            self.free[w.assigned].remove(w.wid)
        w.assigned = w.loaded = w.loading = None
        w.switching = False
        w.kept.clear()  # a replacement process starts with nothing in memory
        return self._requeue(now, batch)

    def worker_back(self, now: float, worker: int) -> list[Command]:
        """A lost worker is back, empty (restarted): it takes a place in the plan in force
        if one is short of workers, else waits for the next plan."""
        w = self.workers[worker]
        if w.alive:
            return _NOTHING
        w.alive = True
        self._ready = None
        return self._assign_workers(now, self.plan) if self.plan is not None else _NOTHING

    def add_worker(self) -> int:
        """A new worker slot (the cluster grew), not alive yet: `worker_back` brings it in
        once its process is ready. Returns its id."""
        w = Worker(len(self.workers), Residency(self.profile, self.config.host_cache))
        w.alive = False
        self.workers.append(w)
        return w.wid

    def live_workers(self) -> int:
        return sum(1 for w in self.workers if w.alive)

    def _requeue(self, now: float, queries: list[Query]) -> list[Command]:
        """Queries back in their model's queue (not counted as new arrivals), then batches
        for free workers."""
        models = dict.fromkeys(q.model for q in queries)
        for q in queries:
            heapq.heappush(self.queues[q.model], (q.arrival_s, q.qid, q))
        out: list[Command] = []
        for model in models:
            out.extend(self._fill(now, model))
        return out

    def _release(self, now: float, w: Worker) -> list[Command]:
        """A worker became free: switch model if the plan moved it, else take more work."""
        if w.assigned is None:
            return _NOTHING
        if w.assigned != w.loaded:
            return [self._start_switch(now, w)]
        self.free[w.assigned].append(w.wid)
        return self._fill(now, w.assigned)

    def _start_switch(self, now: float, w: Worker) -> LoadModel:
        """The worker moves to its assigned model; the one on its device stays there when
        the profile says both fit, else goes to host memory (core/residency.py). The
        switch is expected to take nothing from the device, the profile's reload time from
        host memory, its load time from disk (the configured switch delay where the
        profile has none)."""
        target = w.assigned
        assert target is not None
        variant = self._variants[target]
        found = w.kept.move(variant)
        expected = switch_seconds(found, variant, self.config.switch_delay_s)
        w.switching = True
        w.loading = target
        self._ready = None
        return LoadModel(w.wid, target, expected)

    @property
    def switch_s(self) -> float:
        """The longest expected switch (from disk) of the profile's models: what a re-plan
        that moves workers should count on."""
        default = self.config.switch_delay_s
        return max(m.switch_s(False, default) for m in self.profile.models)

    def worker_ready(self, now: float, worker: int) -> list[Command]:
        """A model load finished (the driver carried out a LoadModel)."""
        w = self.workers[worker]
        self._ready = None
        w.switching = False
        w.loaded, w.loading = w.loading, None
        if w.assigned is None:
            return _NOTHING
        if w.assigned != w.loaded:  # the plan moved it again while it was loading
            return [self._start_switch(now, w)]
        self.free[w.assigned].append(w.wid)
        return self._fill(now, w.assigned)

    # ------------------------------------------------------------------ plans
    def apply_plan(self, now: float, plan: Plan) -> list[Command]:
        """Adopt a plan: thresholds, worker assignment, migration of orphaned queues."""
        self.plan = plan
        self._split = None
        self._split_pair = None
        if plan.split:
            names = list(plan.split)
            self._split = (names, list(itertools.accumulate(plan.split[n] for n in names)))
            used = {n for n, share in plan.split.items() if share > 0}
            self._split_pair = next((p for p in self._router_only_pairs if set(p) == used), None)
        if plan.heavy is not None:
            self._router_cut = self.router.threshold(plan.r) if plan.r > 0 else float("inf")
            self._disc_cut = (
                self.discriminator.threshold(plan.light, plan.d) if plan.d > 0 else float("-inf")
            )
        self._pair = plan.pair
        self._routes = plan.heavy is not None and plan.r > 0
        if plan.heavy is not None and not plan.gpus.get(plan.light):
            # everything goes to heavy (r = 1), whether or not the router can say so (e.g.
            # `--router none`, whose cut point is always +inf): the light model has no workers
            self._router_cut, self._routes = float("-inf"), True
        escalates = self._split is None and plan.heavy not in (None, plan.light)
        self._scored_model = plan.light if escalates and plan.d > 0 else None
        factor = plan.admission_factor or self.config.drop_factor
        self._drop_after_s = factor * self.config.slo_s
        self._heavy_wait_ok = self._can_wait_for_heavy(plan)
        self.listener.on_plan(now, plan)
        out = self._assign_workers(now, plan)
        for model, queue in self.queues.items():
            if queue and not plan.gpus.get(model):
                self._migrate(now, model)
        for model in plan.gpus:
            out.extend(self._fill(now, model))
        return out

    def _assign_workers(self, now: float, plan: Plan) -> list[Command]:
        want = {m: g for m, g in plan.gpus.items() if g > 0}
        if sum(want.values()) > len(self.workers):
            raise HadisError(
                f"plan needs {sum(want.values())} workers, engine has {len(self.workers)}"
            )
        # Keep workers whose assignment still fits: those with the model loaded first, and
        # of those, the ones that keep no other wanted model on their device (they may
        # move to it for free).
        wanted = {self._variants[m].weights: m for m in want}

        def on_device(w: Worker) -> str | None:  # a wanted model it keeps beside its own
            return next((wanted[k] for k in w.kept.device[1:] if k in wanted), None)

        keep: dict[int, str] = {}
        alive = [w for w in self.workers if w.alive]
        ranked = sorted(
            alive, key=lambda w: (w.assigned != w.loaded, on_device(w) is not None, w.wid)
        )
        for w in ranked:
            if w.assigned in want and want[w.assigned] > 0:
                want[w.assigned] -= 1
                keep[w.wid] = w.assigned
        # Then workers that already run a wanted model, then those that keep one on their
        # device, then the rest.
        spare = [w for w in alive if w.wid not in keep]
        targets = [m for m, n in want.items() for _ in range(n)]
        spare.sort(key=lambda w: (want.get(w.loaded or "", 0) <= 0, on_device(w) is None, w.wid))
        out: list[Command] = []
        for w in spare:
            target = None
            if w.loaded in targets:
                target = w.loaded
            elif (kept := on_device(w)) in targets:
                target = kept
            elif targets:
                target = targets[0]
            if target is not None:
                targets.remove(target)
            out.extend(self._reassign(now, w, target))
        for wid, model in keep.items():
            self.workers[wid].batch = plan.batch[model]
        return out

    def _reassign(self, now: float, w: Worker, target: str | None) -> list[Command]:
        self._ready = None
        old = w.assigned
        if old is not None and w.wid in self.free[old]:
            self.free[old].remove(w.wid)
        w.assigned = target
        if target is None:
            return []
        w.batch = self.plan.batch[target]  # type: ignore[union-attr]
        if w.busy or w.switching:
            return []  # batch_done / worker_ready will pick the new assignment up
        if w.loaded == target:
            self.free[target].append(w.wid)
            return []
        return [self._start_switch(now, w)]

    def _migrate(self, now: float, model: str) -> None:
        """Queued queries of a model the plan no longer serves move to the new plan."""
        plan = self.plan
        assert plan is not None
        queue, self.queues[model] = self.queues[model], []
        for _, _, q in sorted(queue):
            if q.path == ESCALATED:
                if (
                    plan.heavy is not None
                    and plan.gpus.get(plan.heavy)
                    and self._heavy_answers(plan)
                ):
                    self._enqueue(q, plan.heavy)
                else:  # no heavy model (loaded) any more: the light image is the answer
                    q.path = LIGHT
                    self._serve(now, q)
            else:
                self._enqueue(q, self._route(q, migrating=True))

    def drain(
        self, now: float, reason: DropReason = DropReason.UNFINISHED, detail: str = ""
    ) -> int:
        """Drop every queued query (end of a run, shutdown, no worker left); how many."""
        n = 0
        for queue in self.queues.values():
            for _, _, q in sorted(queue):
                self._drop(now, q, reason, detail)
                n += 1
            queue.clear()
        return n

    # ------------------------------------------------------------------ state
    def idle(self) -> bool:
        """Nothing queued, running or loading."""
        return not any(self.queues.values()) and not any(
            w.busy or w.switching for w in self.workers
        )

    def ready(self, model: str) -> bool:
        """Some live worker assigned to `model` has it loaded (busy or not)."""
        if self._ready is None:
            self._ready = {
                w.assigned
                for w in self.workers
                if w.alive and w.assigned is not None and w.assigned == w.loaded
            }
        return model in self._ready

    def held_weights(self) -> Counter[str]:
        """Live workers per set of weights they hold or are loading (idle ones included)."""
        out: Counter[str] = Counter()
        for w in self.workers:
            name = w.loading or w.loaded
            if w.alive and name is not None:
                out[self._variants[name].weights] += 1
        return out

    def committed_weights(self) -> Counter[str]:
        """Per set of weights that some live worker is moving to (loading them, or
        finishing a batch before it loads), the live workers the plan assigns to them."""
        assigned: Counter[str] = Counter()
        moving: set[str] = set()
        for w in self.workers:
            if not w.alive or w.assigned is None:
                continue
            weights = self._variants[w.assigned].weights
            assigned[weights] += 1
            if w.loaded is None or self._variants[w.loaded].weights != weights:
                moving.add(weights)
        return Counter({k: n for k, n in assigned.items() if k in moving})

    def oldest_queued_s(self) -> dict[str, float]:
        """Per model with a queue, the arrival time of its oldest queued query."""
        return {m: q[0][0] for m, q in self.queues.items() if q}

    def queue_lengths(self) -> dict[str, int]:
        return {m: len(q) for m, q in self.queues.items() if q}

    def snapshot(self, now: float, workers: bool = True) -> EngineSnapshot:
        """A copy of the state drivers, admission and the API read (never the engine's own
        structures); workers=False leaves the per-worker views out (admission's hot path)."""
        return EngineSnapshot(
            now_s=now,
            plan=self.plan,
            queues={m: len(q) for m, q in self.queues.items()},
            free={m: len(f) for m, f in self.free.items()},
            workers=()
            if not workers
            else tuple(
                WorkerView(
                    id=w.wid,
                    assigned=w.assigned,
                    loaded=w.loaded,
                    loading=w.loading,
                    busy=w.busy,
                    switching=w.switching,
                    alive=w.alive,
                    running=len(w.running),
                    started_s=w.started_s,
                )
                for w in self.workers
            ),
        )
