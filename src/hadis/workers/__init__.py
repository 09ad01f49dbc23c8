"""The worker layer: executors (what runs a model), worker handles whose calls return
futures (ready, load, run, death, kill), and the backends that place workers (`local`
threads, `ray` actors). Drivers (hadis serve) and the profiler use it; both executors and
backends are registered by name, one module each."""

import importlib
import pkgutil

from hadis.workers.base import (
    BatchJob,
    BatchResult,
    WorkerBackend,
    WorkerDied,
    WorkerHandle,
    WorkerSpec,
    backend_names,
    make_backend,
)
from hadis.workers.executors import Executor, ExecutorSettings, executor_factory, executor_names

__all__ = [
    "BatchJob",
    "BatchResult",
    "Executor",
    "ExecutorSettings",
    "WorkerBackend",
    "WorkerDied",
    "WorkerHandle",
    "WorkerSpec",
    "backend_names",
    "executor_factory",
    "executor_names",
    "make_backend",
]

# Every module of this package is imported, so an executor or a backend registered in a
# new file here is found by name.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
