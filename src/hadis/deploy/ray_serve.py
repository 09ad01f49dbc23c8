"""hadis as a Ray Serve application: the OpenAI-compatible API as a Serve deployment in
front of the driver (engine + controller) and the worker actors of the Ray backend.

    serve run hadis.deploy.ray_serve:app_builder profile=demo-cpu workers=2
    serve deploy deploy/ray/serve.yaml        # a config file: the same arguments

The ingress is one replica and holds the driver: the engine must see every query to batch,
route and plan, so a second replica would be a second, independent hadis. Ray Serve's
autoscaler stays off (the planner is the autoscaler: it moves GPUs between models).
Worker actors are spawned by the replica, one per slot, named `hadis-worker-<i>` in the
namespace given (default `hadis`). Arguments are those of `hadis serve` (see AppArgs).
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hadis.core.config import HOST_CACHE


class AppArgs(BaseModel):
    """The application's arguments (`serve run ... key=value` or a config's `args:`)."""

    model_config = ConfigDict(extra="forbid")

    profile: str = "demo-cpu"
    executor: str | None = None  # default: the profile's, else diffusers
    router: str | None = None
    discriminator: str | None = None
    policy: str = "hadis"
    workers: int | str | None = None  # a count, "auto", or the profile's
    worker_cpus: float = Field(1.0, ge=0)
    worker_gpus: float | None = Field(None, ge=0)  # default: 1 on a cuda device, else 0
    device: str = "cpu"
    dtype: str = "float32"
    time_scale: float = Field(1.0, gt=0)
    slo: float | None = Field(None, gt=0)
    seed: int = 0
    max_queue: int = Field(1000, ge=1)
    host_cache: int = Field(HOST_CACHE, ge=0)  # models a worker keeps in host memory
    api_keys: list[str] = []  # default: HADIS_API_KEY, if set
    namespace: str = "hadis"
    ingress_cpus: float = Field(1.0, ge=0)
    max_ongoing_requests: int = Field(2000, ge=1)


def build_fastapi_app(args: AppArgs) -> Any:
    """The hadis app with its workers on the Ray cluster this process is connected to."""
    from hadis.profiles import load_profile
    from hadis.serve import ServeConfig, build_app, serving_choices, worker_backend
    from hadis.workers.base import default_worker_gpus, worker_count

    profile = load_profile(args.profile)
    chosen = serving_choices(
        profile,
        executor=args.executor,
        router=args.router,
        discriminator=args.discriminator,
        slo_s=args.slo,
    )
    executor, router, discriminator = chosen.executor, chosen.router, chosen.discriminator
    gpus = args.worker_gpus
    if gpus is None:
        gpus = default_worker_gpus(args.device)
    backend = worker_backend(
        profile,
        backend="ray",
        executor=executor,
        discriminator=discriminator,
        seed=args.seed,
        time_scale=args.time_scale,
        device=args.device,
        dtype=args.dtype,
        namespace=args.namespace,
        num_cpus=args.worker_cpus,
        num_gpus=gpus,
        host_cache=args.host_cache,
    )
    workers = worker_count(args.workers, backend, chosen.workers)
    config = ServeConfig(
        workers=workers,
        elastic=args.workers == "auto",
        slo_s=chosen.slo_s,
        policy=args.policy,
        time_scale=args.time_scale,
        seed=args.seed,
        max_queue=args.max_queue,
        host_cache=args.host_cache,
        api_keys=tuple(args.api_keys or _env_keys()),
    )
    return build_app(
        profile,
        config,
        executor=executor,
        router=router,
        discriminator=discriminator,
        device=args.device,
        dtype=args.dtype,
        backend=backend,
    )


def _env_keys() -> list[str]:
    """HADIS_API_KEY, as `hadis serve` reads it (e.g. from a Kubernetes Secret)."""
    return os.environ.get("HADIS_API_KEY", "").split()  # several: separated by spaces


def app_builder(args: dict[str, Any]) -> Any:
    """The Ray Serve application (`serve run hadis.deploy.ray_serve:app_builder k=v ...`)."""
    from ray import serve

    parsed = AppArgs(**args)

    def make_app() -> Any:  # called in the replica: its workers belong to it
        return build_fastapi_app(parsed)

    @serve.deployment(
        name="hadis",
        num_replicas=1,  # the replica is the driver: one engine sees every query
        max_ongoing_requests=parsed.max_ongoing_requests,
        ray_actor_options={"num_cpus": parsed.ingress_cpus},
    )
    @serve.ingress(make_app)
    class HadisIngress:
        pass

    # the decorators made the class a Deployment
    return HadisIngress.bind()  # type: ignore[attr-defined]
