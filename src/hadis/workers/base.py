"""The worker layer: where a worker slot's executor runs (a thread here, a Ray actor in
`workers/ray_backend.py`), behind one small interface the live service drives.

A worker runs one batch or one model load at a time (the service never sends a second
before the first has answered). Every call returns a `concurrent.futures.Future`; a future
that raises `WorkerDied` means the worker itself is gone (its process or node), not that
the batch failed: the service then treats the worker as lost and spawns it again.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from hadis.errors import HadisError
from hadis.registry import Registry
from hadis.routing import Discriminator
from hadis.routing.registry import make_discriminator
from hadis.workers.executors import Executor, ExecutorSettings, executor_factory, resized_png

if TYPE_CHECKING:
    from hadis.workers.chaos import Chaos


class WorkerDied(HadisError):
    """The worker's process (or its node) is gone; what it was running is lost."""


@dataclass(frozen=True, slots=True)
class BatchJob:
    """One batch as a worker receives it (plain data: it crosses process boundaries)."""

    model: str
    prompts: list[str]
    seeds: list[int]
    size: tuple[int, int]  # the batch's resolution (the model's own)
    wanted: list[tuple[int, int] | None]  # per image: the size asked for, if another
    # per image: (prompt id, seed) for the discriminator to score, or None (not scored)
    score: list[tuple[int | None, int] | None]


@dataclass(frozen=True, slots=True)
class BatchResult:
    images: list[bytes]  # PNG, one per prompt
    confidences: list[float | None]


def run_batch(executor: Executor, discriminator: Discriminator, job: BatchJob) -> BatchResult:
    """On the worker: generate, score the light images the engine asked about (on the worker,
    next to the image, rather than in the API process), resize those asked for at another
    size."""
    out = executor.generate(job.model, job.prompts, job.seeds, job.size)
    confidences: list[float | None] = [None] * len(out.images)
    for i, (spec, image) in enumerate(zip(job.score, out.images, strict=False)):
        if spec is not None:
            confidences[i] = discriminator.confidence(job.model, spec[0], spec[1], image)
    images = [
        img if w is None or tuple(w) == tuple(job.size) else resized_png(img, w)
        for img, w in zip(out.images, job.wanted, strict=False)
    ]
    return BatchResult(images, confidences)


class WorkerHandle(Protocol):
    """The service's handle on one worker slot."""

    placement: str  # where it runs, for operators (e.g. "local" or a Ray node id)

    def ready(self) -> concurrent.futures.Future[str]:
        """Resolves (to its placement) once the worker can take work."""
        ...

    def load(self, model: str) -> concurrent.futures.Future[float]:
        """Make `model` the worker's active model; resolves to the seconds it took."""
        ...

    def run(self, job: BatchJob) -> concurrent.futures.Future[BatchResult]: ...

    def death(self) -> concurrent.futures.Future[None] | None:
        """A future that raises WorkerDied when the worker dies on its own (None: a worker
        that cannot, like a thread)."""
        ...

    def kill(self) -> None:
        """Stop the worker hard (it hung); calls in flight may never answer."""
        ...


class WorkerBackend(Protocol):
    """Creates worker slots. `spawn` is called off the event loop (it may block briefly)."""

    name: str
    # a killed (hung) worker is really stopped, so it can be replaced at once; a thread
    # cannot be stopped, and is replaced after the restart delay like a failing one
    kills_hung: bool

    def spawn(self, wid: int) -> WorkerHandle: ...

    def slots(self) -> int | None:
        """How many workers the resources hold now (None: a fixed pool)."""
        ...

    def close(self) -> None: ...


class ThreadWorker:
    """A worker slot in this process: one thread, one executor."""

    placement = "local"

    def __init__(self, wid: int, executor: Executor, discriminator: Discriminator) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=f"hadis-worker-{wid}"
        )
        self._executor = executor
        self._discriminator = discriminator

    def ready(self) -> concurrent.futures.Future[str]:
        fut: concurrent.futures.Future[str] = concurrent.futures.Future()
        fut.set_result(self.placement)
        return fut

    def load(self, model: str) -> concurrent.futures.Future[float]:
        return self._pool.submit(self._executor.load, model)

    def run(self, job: BatchJob) -> concurrent.futures.Future[BatchResult]:
        return self._pool.submit(run_batch, self._executor, self._discriminator, job)

    def death(self) -> None:
        return None

    def kill(self) -> None:
        # a thread cannot be stopped: it is abandoned (its late result is ignored); an
        # executor that can end a batch early (chaos's hang) is told to
        release = getattr(self._executor, "release", None)
        if callable(release):
            release()
        self._pool.shutdown(wait=False, cancel_futures=True)


class ThreadBackend:
    """Workers as threads of the API process (one device, one machine)."""

    name = "local"
    kills_hung = False

    def __init__(
        self,
        executor_factory: Callable[[], Executor],
        discriminator: Discriminator,
        chaos: Chaos | None = None,
    ) -> None:
        self.executor_factory = executor_factory
        self.discriminator = discriminator
        self.chaos = chaos
        self._workers: dict[int, ThreadWorker] = {}

    def spawn(self, wid: int) -> ThreadWorker:
        executor = self.executor_factory()
        if self.chaos is not None:
            executor = self.chaos.wrap(executor, wid)
        worker = ThreadWorker(wid, executor, self.discriminator)
        self._workers[wid] = worker
        return worker

    def slots(self) -> None:
        return None

    def close(self) -> None:
        for worker in self._workers.values():
            worker.kill()


@dataclass(frozen=True)
class WorkerSpec:
    """All a worker needs to build itself (plain data: a remote worker builds its executor
    and discriminator from it)."""

    executor: str
    settings: ExecutorSettings
    discriminator: str = "reference"
    seed: int = 0
    chaos: Chaos | None = None  # faults on purpose (--chaos; testing aid)

    def build(self, wid: int) -> tuple[Executor, Discriminator]:
        """Worker `wid`'s executor and discriminator."""
        executor = executor_factory(self.executor, self.settings)()
        if self.chaos is not None:
            executor = self.chaos.wrap(executor, wid)
        return executor, make_discriminator(self.discriminator, self.settings.profile, self.seed)


# name -> (spec, backend options -> backend). A backend is one module: register it here by
# name, and the serve package imports each of its modules.
BackendFactory = Callable[..., WorkerBackend]
_BACKENDS: Registry[BackendFactory] = Registry("backend")
register_backend = _BACKENDS.register
backend_names = _BACKENDS.names


def make_backend(name: str, spec: WorkerSpec, **options: Any) -> WorkerBackend:
    """The worker backend `name` for workers built from `spec`."""
    return _BACKENDS.get(name)(spec, **options)


@register_backend("local")
def _local(spec: WorkerSpec) -> ThreadBackend:
    executors = executor_factory(spec.executor, spec.settings)
    discriminator = make_discriminator(spec.discriminator, spec.settings.profile, spec.seed)
    return ThreadBackend(executors, discriminator, spec.chaos)


def default_worker_gpus(device: str) -> float:
    """GPUs a worker reserves unless told: one on a cuda device, none on a CPU."""
    return 1.0 if device.startswith("cuda") else 0.0


def worker_count(requested: int | str | None, backend: WorkerBackend, default: int) -> int:
    """Workers to start: a count, 'auto' (as many as the backend's resources hold), or
    None (the profile's default)."""
    if requested == "auto":
        n = backend.slots() or 0
        if n < 1:
            raise HadisError("the cluster has no room for a worker (see --worker-cpus/-gpus)")
        return n
    if requested is None:
        return default
    try:
        n = int(requested)
    except ValueError:
        raise HadisError(f"workers must be a number or 'auto', got {requested!r}") from None
    if n < 1:
        raise HadisError(f"workers must be >= 1, got {n}")
    return n
