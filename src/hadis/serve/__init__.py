"""Live serving: the engine on a real clock (the live driver), the OpenAI-compatible HTTP
API, metrics and the dashboard. Workers and executors are hadis.workers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

import hadis.workers  # noqa: F401  (every executor and backend registered)
from hadis.engine.quality import QualityTable
from hadis.profiles import Profile
from hadis.routing.simple import make_discriminator, make_router
from hadis.serve.api import create_app
from hadis.serve.prom import ServerMetrics
from hadis.serve.service import LiveService, ServeConfig
from hadis.workers.base import WorkerBackend, WorkerSpec, backend_names, make_backend
from hadis.workers.chaos import Chaos
from hadis.workers.executors import ExecutorSettings, executor_factory

__all__ = [
    "LiveService",
    "ServeConfig",
    "WorkerBackend",
    "backend_names",
    "build_app",
    "create_app",
    "worker_backend",
]


def worker_backend(
    profile: Profile,
    *,
    backend: str = "local",
    executor: str = "diffusers",
    discriminator: str = "reference",
    seed: int = 0,
    time_scale: float = 1.0,
    switch_delay_s: float = 3.0,
    device: str = "cpu",
    dtype: str = "float32",
    local_files_only: bool = False,
    chaos: Chaos | None = None,
    **options: Any,
) -> WorkerBackend:
    """Where the workers run (`local`: threads of this process; `ray`: actors on a Ray
    cluster, `options` being the backend's own: address, namespace, num_cpus, num_gpus)."""
    settings = ExecutorSettings(
        profile, time_scale, switch_delay_s, device, dtype, local_files_only
    )
    executor_factory(executor, settings)  # an unknown executor or a missing extra: fail here
    spec = WorkerSpec(executor, settings, discriminator, seed, chaos)
    return make_backend(backend, spec, **options)


def build_app(
    profile: Profile,
    config: ServeConfig,
    *,
    executor: str = "diffusers",
    router: str = "reference",
    discriminator: str = "reference",
    device: str = "cpu",
    dtype: str = "float32",
    local_files_only: bool = False,
    on_ready: Callable[[], None] | None = None,
    backend: WorkerBackend | None = None,
    on_failed: Callable[[], None] | None = None,
) -> FastAPI:
    """The FastAPI app of a live server (the service starts with the app's lifespan).
    Workers run on `backend` (default: threads of this process)."""
    if backend is None:
        backend = worker_backend(
            profile,
            executor=executor,
            discriminator=discriminator,
            seed=config.seed,
            time_scale=config.time_scale,
            switch_delay_s=config.switch_delay_s,
            device=device,
            dtype=dtype,
            local_files_only=local_files_only,
        )
    metrics = ServerMetrics(
        config.time_scale,
        config.slo_s,
        tuple(m.name for m in profile.models),
        QualityTable(profile),
    )
    service = LiveService(
        profile,
        config,
        None,
        make_router(router, config.seed),
        make_discriminator(discriminator, profile, config.seed),
        executor_name=executor,
        listeners=[metrics],
        on_ready=on_ready,
        backend=backend,
        on_failed=on_failed,
    )
    return create_app(service, metrics)
