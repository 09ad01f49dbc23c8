"""Live serving: executors, the engine on a real clock, the OpenAI-compatible HTTP API."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from fastapi import FastAPI

from hadis.engine.quality import QualityTable
from hadis.profiles import Profile
from hadis.routing.simple import make_discriminator, make_router
from hadis.serve.api import create_app
from hadis.serve.executors import make_executor_factory
from hadis.serve.prom import ServerMetrics
from hadis.serve.service import LiveService, ServeConfig

__all__ = ["LiveService", "ServeConfig", "build_app", "create_app"]

# Every module of this package is imported, so an executor registered in a new file here
# is found by name (serve/executors.py, register_executor).
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


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
) -> FastAPI:
    """The FastAPI app of a live server (the service starts with the app's lifespan)."""
    factory = make_executor_factory(
        executor,
        profile,
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
        factory,
        make_router(router, config.seed),
        make_discriminator(discriminator, profile, config.seed),
        executor_name=executor,
        listeners=[metrics],
        on_ready=on_ready,
    )
    return create_app(service, metrics)
