"""Workers as Ray actors (`hadis serve --backend ray`): one actor per worker slot, each
owning its executor and the discriminator, spread over the cluster's nodes.

The driver (engine + controller) stays in the API process; it reaches its workers through
actor calls whose results (PNG bytes) travel as Ray objects. Actors are named
`hadis-worker-<i>` in the Ray namespace (default `hadis`), so `ray list actors` and the Ray
dashboard show them. Ray never restarts them on its own: the service decides (a worker that
died is replaced at once, one that keeps failing after the restart delay), so that the
planner sees the capacity it really has meanwhile. Ray is imported only when this backend
is used (the `[ray]` extra).
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from hadis.errors import HadisError
from hadis.workers.base import (
    BatchJob,
    BatchResult,
    WorkerDied,
    WorkerSpec,
    register_backend,
    run_batch,
)

log = logging.getLogger(__name__)
NAME_WAIT_S = 30.0  # a killed actor's name is released once Ray has seen it die


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise HadisError("the ray backend needs the [ray] extra: pip install 'hadis[ray]'") from e
    return ray


class WorkerActor:
    """The body of a worker actor (wrapped by `ray.remote` when the backend starts)."""

    def __init__(self, spec: WorkerSpec, wid: int) -> None:
        import hadis.workers  # noqa: F401  (registers the executors)

        self._executor, self._discriminator = spec.build(wid)
        self._forever = threading.Event()

    def node(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def load(self, model: str) -> float:
        return self._executor.load(model)

    def run(self, job: BatchJob) -> BatchResult:
        return run_batch(self._executor, self._discriminator, job)

    def until_death(self) -> None:
        """Never returns: the caller's reference fails when the actor dies, which is how
        the driver learns of a death between batches (its node lost, its process killed)."""
        self._forever.wait()


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: start a local Ray instance; "auto"; "HOST:PORT"
    namespace: str = "hadis"
    num_cpus: float = 1.0  # per worker
    num_gpus: float = 0.0  # per worker (fractional: small models share a device)

    def __post_init__(self) -> None:
        if not (0 <= self.num_cpus < math.inf and 0 <= self.num_gpus < math.inf):
            raise HadisError("worker CPUs and GPUs must be >= 0")
        if self.num_cpus == 0 and self.num_gpus == 0:
            raise HadisError("a worker must ask for some CPUs or GPUs")
        if not self.namespace.strip():
            raise HadisError("the Ray namespace must not be empty")


def _future(ref: Any) -> concurrent.futures.Future:
    """An actor call's result as a concurrent future; a dead actor raises WorkerDied, an
    error inside the call raises that error (not Ray's wrapper with its traceback)."""
    ray = _ray()
    out: concurrent.futures.Future = concurrent.futures.Future()

    def done(f: concurrent.futures.Future) -> None:
        try:
            out.set_result(f.result())
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as e:
            out.set_exception(WorkerDied(_first_line(e)))
        except ray.exceptions.RayTaskError as e:
            cause = e.cause if isinstance(e.cause, Exception) else e
            out.set_exception(cause)
        except BaseException as e:  # cancelled, object lost: every way the call can end
            out.set_exception(WorkerDied(_first_line(e)) if _lost(ray, e) else e)

    ref.future().add_done_callback(done)
    return out


def _lost(ray: Any, e: BaseException) -> bool:
    return isinstance(e, ray.exceptions.ObjectLostError | ray.exceptions.NodeDiedError)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


class RayWorker:
    """The service's handle on one worker actor."""

    def __init__(self, actor: Any, name: str) -> None:
        self._actor = actor
        self.name = name
        self.placement = "pending"  # the node id once the actor runs
        self._ready = _future(actor.node.remote())
        self._ready.add_done_callback(self._placed)

    def _placed(self, fut: concurrent.futures.Future) -> None:
        if fut.exception() is None:
            self.placement = str(fut.result())

    def ready(self) -> concurrent.futures.Future[str]:
        return self._ready

    def load(self, model: str) -> concurrent.futures.Future[float]:
        return _future(self._actor.load.remote(model))

    def run(self, job: BatchJob) -> concurrent.futures.Future[BatchResult]:
        return _future(self._actor.run.remote(job))

    def death(self) -> concurrent.futures.Future[None]:
        return _future(self._actor.until_death.remote())

    def kill(self) -> None:
        _ray().kill(self._actor, no_restart=True)


class RayBackend:
    """Worker slots as Ray actors on the cluster at `options.address`."""

    name = "ray"
    kills_hung = True

    def __init__(self, spec: WorkerSpec, options: RayOptions) -> None:
        ray = _ray()
        self.spec = spec
        self.options = options
        if not ray.is_initialized():
            try:
                ray.init(
                    address=options.address,
                    namespace=options.namespace,
                    log_to_driver=False,
                    configure_logging=False,
                )
            except (ConnectionError, ValueError, RuntimeError) as e:
                where = options.address or "a local instance"
                raise HadisError(f"cannot connect to Ray at {where}: {_first_line(e)}") from e
        # two threads: one runs a batch or a load, one waits for the actor's death
        self._actor_class = ray.remote(max_concurrency=2, max_restarts=0)(WorkerActor)
        self._workers: dict[int, RayWorker] = {}
        self._closed = False

    def _name(self, wid: int) -> str:
        return f"hadis-worker-{wid}"

    def spawn(self, wid: int) -> RayWorker:
        """A new actor for slot `wid` (its old one, if any, is killed first). Blocks until
        the old one's name is free; never for the new actor's placement."""
        if self._closed:
            raise HadisError("the Ray backend is closed")
        name = self._name(wid)
        old = self._workers.pop(wid, None)
        if old is not None:
            old.kill()
        elif self._exists(name):
            raise HadisError(
                f"a Ray actor named {name!r} already runs in namespace "
                f"{self.options.namespace!r}: another hadis server? "
                "(give this one its own --ray-namespace)"
            )
        options: dict[str, Any] = {
            "name": name,
            "namespace": self.options.namespace,
            "num_cpus": self.options.num_cpus,
            "num_gpus": self.options.num_gpus,
            "scheduling_strategy": "SPREAD",
        }
        deadline = time.monotonic() + NAME_WAIT_S
        while True:
            try:
                actor = self._actor_class.options(**options).remote(self.spec, wid)
                break
            except ValueError:  # the old actor's name is not released yet
                if time.monotonic() > deadline:
                    raise HadisError(f"the Ray actor name {name!r} stays taken") from None
                time.sleep(0.05)
        worker = RayWorker(actor, name)
        if self._closed:  # closed while this spawn waited for the name
            worker.kill()
            raise HadisError("the Ray backend is closed")
        self._workers[wid] = worker
        return worker

    def _exists(self, name: str) -> bool:
        try:
            _ray().get_actor(name, namespace=self.options.namespace)
        except ValueError:
            return False
        return True

    def slots(self) -> int:
        """How many workers the alive nodes' resources hold."""
        total = _ray().cluster_resources()
        fits = []
        if self.options.num_gpus > 0:
            fits.append(total.get("GPU", 0.0) / self.options.num_gpus)
        if self.options.num_cpus > 0:
            fits.append(total.get("CPU", 0.0) / self.options.num_cpus)
        return int(math.floor(min(fits) + 1e-9))

    def close(self, wait_s: float = 10.0) -> None:
        """Kill every worker actor and wait (up to wait_s) until their names are free, so
        that a server started next in the namespace finds none of them."""
        self._closed = True
        workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            try:
                worker.kill()
            except Exception as e:  # the cluster went first: nothing left to kill
                log.debug("could not kill %s: %s", worker.name, e)
        deadline = time.monotonic() + wait_s
        for worker in workers:
            try:
                while self._exists(worker.name) and time.monotonic() < deadline:
                    time.sleep(0.05)
            except Exception as e:  # Ray itself is gone
                log.debug("cannot check %s: %s", worker.name, e)
                return


@register_backend("ray")
def _ray_backend(spec: WorkerSpec, **options: Any) -> RayBackend:
    known = set(RayOptions.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise HadisError(
            f"unknown ray backend option(s) {', '.join(unknown)}; valid: {', '.join(known)}"
        )
    return RayBackend(spec, RayOptions(**options))
