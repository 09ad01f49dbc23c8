"""Live serving: the engine on a real clock (the live driver), the OpenAI-compatible HTTP
API, metrics and the dashboard. Workers and executors are hadis.workers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

import hadis.workers  # noqa: F401  (every executor and backend registered)
from hadis.core.config import HOST_CACHE, SLO_S, SWITCH_DELAY_S
from hadis.engine.quality import QualityTable
from hadis.errors import HadisError
from hadis.profiles import Profile
from hadis.routing.simple import make_discriminator, make_router
from hadis.serve.api import create_app
from hadis.serve.prom import ServerMetrics
from hadis.serve.service import LiveService, ServeConfig
from hadis.workers.base import WorkerBackend, WorkerSpec, backend_names, make_backend
from hadis.workers.chaos import Chaos
from hadis.workers.executors import ExecutorSettings, executor_factory

__all__ = [
    "Choices",
    "LiveService",
    "ServeConfig",
    "WorkerBackend",
    "backend_names",
    "build_app",
    "serving_choices",
    "create_app",
    "worker_backend",
]


@dataclass(frozen=True)
class Choices:
    """What a server runs when its options leave things open: the profile's serving
    defaults (profile.serving), else the project's."""

    executor: str
    router: str
    discriminator: str
    slo_s: float
    workers: int


def serving_choices(
    profile: Profile,
    *,
    executor: str | None = None,
    router: str | None = None,
    discriminator: str | None = None,
    slo_s: float | None = None,
) -> Choices:
    """The one place `hadis serve` and the Ray Serve app resolve their defaults."""
    defaults = profile.serving
    if slo_s is not None:
        fastest = min(profile.models, key=lambda m: m.latency_s[1])
        if not slo_s >= fastest.latency_s[1]:
            raise HadisError(
                f"--slo {slo_s:g}s is below every model's latency "
                f"(fastest: {fastest.name} at {fastest.latency_s[1]:g}s per image)"
            )
    return Choices(
        executor=executor or defaults.executor or "diffusers",
        router=router or defaults.router or "reference",
        discriminator=discriminator or defaults.discriminator or "reference",
        slo_s=slo_s if slo_s is not None else defaults.slo_s or SLO_S,
        workers=defaults.workers or 1,
    )


def worker_backend(
    profile: Profile,
    *,
    backend: str = "local",
    executor: str = "diffusers",
    discriminator: str = "reference",
    seed: int = 0,
    time_scale: float = 1.0,
    switch_delay_s: float = SWITCH_DELAY_S,
    device: str = "cpu",
    dtype: str = "float32",
    local_files_only: bool = False,
    chaos: Chaos | None = None,
    host_cache: int = HOST_CACHE,
    **options: Any,
) -> WorkerBackend:
    """Where the workers run (`local`: threads of this process; `ray`: actors on a Ray
    cluster, `options` being the backend's own: address, namespace, num_cpus, num_gpus)."""
    settings = ExecutorSettings(
        profile, time_scale, switch_delay_s, device, dtype, local_files_only, host_cache
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
            host_cache=config.host_cache,
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
