"""`hadis serve` and `hadis load`: the live server and an HTTP load generator."""

from __future__ import annotations

import asyncio
import json
import logging

import typer

from hadis.cli.common import (
    POINT_SECONDS_OPTION,
    PROFILE_OPTION,
    QPS_OPTION,
    SUMMARY_KEYS,
    TRACE_OPTION,
    console,
    err_console,
    summary_table,
    user_errors,
)
from hadis.cli.trace_cmd import resolve_trace
from hadis.errors import HadisError
from hadis.planner import policy_names
from hadis.profiles import load_profile
from hadis.routing.simple import DISCRIMINATORS, ROUTERS
from hadis.serve.executors import EXECUTORS


@user_errors
def serve_command(
    profile: str = typer.Option(
        "demo-cpu",
        help="Bundled profile name or profile file (default: the bundled CPU demo pool).",
    ),
    workers: int | None = typer.Option(
        None, help="Workers (device slots), one model each (default: the profile's, else 1)."
    ),
    executor: str | None = typer.Option(
        None,
        help=f"{' or '.join(EXECUTORS)} (profile: simulated latencies, placeholder images, "
        "for load tests) (default: the profile's, else diffusers).",
    ),
    time_scale: float = typer.Option(
        1.0,
        help="profile executor: real seconds per profiled "
        "second (e.g. 0.01 runs the paper pool 100x faster).",
    ),
    slo: float | None = typer.Option(
        None, help="Latency SLO in profile seconds (default: the profile's, else 60)."
    ),
    policy: str = typer.Option("hadis", help=f"Planning policy: {', '.join(policy_names())}."),
    router: str | None = typer.Option(
        None, help=f"Router: {', '.join(ROUTERS)} (default: the profile's, else reference)."
    ),
    discriminator: str | None = typer.Option(
        None,
        help=f"Discriminator: {', '.join(DISCRIMINATORS)} "
        "(default: the profile's, else reference).",
    ),
    device: str = typer.Option("cpu", help="diffusers executor: torch device (cpu, cuda)."),
    dtype: str = typer.Option("float32", help="diffusers executor: float32, float16, bfloat16."),
    max_queue: int = typer.Option(1000, help="Queued queries beyond which requests get 429."),
    seed: int = typer.Option(0, help="Seed for the random router/discriminator."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
) -> None:
    """Serve the OpenAI-compatible images API with the HADIS engine.

    With no options: the bundled demo pool of tiny text-to-image models on this CPU.
    """
    import uvicorn

    from hadis.serve import ServeConfig, build_app

    if not 0 < port < 65536:
        raise HadisError(f"port must be in 1..65535, got {port}")
    if policy not in policy_names():
        raise HadisError(f"unknown policy {policy!r}; valid: {', '.join(policy_names())}")
    prof = load_profile(profile)
    defaults = prof.serving
    workers = workers if workers is not None else defaults.workers or 1
    executor = executor or defaults.executor or "diffusers"
    router = router or defaults.router or "reference"
    discriminator = discriminator or defaults.discriminator or "reference"
    config = ServeConfig(
        workers=workers,
        slo_s=slo if slo is not None else defaults.slo_s or 60.0,
        policy=policy,
        time_scale=time_scale,
        seed=seed,
        max_queue=max_queue,
    )
    base = f"http://{host}:{port}"

    def ready() -> None:
        console.print(
            f"hadis is ready: {prof.name}, {workers} workers ({executor} executor). "
            f"Point an OpenAI client at base_url={base}/v1 "
            f"(POST {base}/v1/images/generations; metrics at {base}/metrics)"
        )

    app = build_app(
        prof,
        config,
        executor=executor,
        router=router,
        discriminator=discriminator,
        device=device,
        dtype=dtype,
        on_ready=ready,
    )
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    err_console.print(f"starting hadis on {base} (loading models) ...")
    uvicorn.run(app, host=host, port=port, log_level="warning")


@user_errors
def load_command(
    url: str = typer.Option("http://127.0.0.1:8000", help="Server base URL."),
    trace: str = TRACE_OPTION,
    qps: str | None = QPS_OPTION,
    point_seconds: float = POINT_SECONDS_OPTION,
    time_scale: float = typer.Option(1.0, help="The server's time scale (arrivals x scale)."),
    profile: str = PROFILE_OPTION,
    slo: float = typer.Option(60.0, help="SLO in profile seconds."),
    gpus: int = typer.Option(16, help="The server's workers (for reporting)."),
    seed: int = typer.Option(0, help="Trace seed."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Replay a trace against a running server and report violations and served quality."""
    from hadis.serve.loadgen import replay

    prof = load_profile(profile)
    tr = resolve_trace(trace, qps, point_seconds, seed)
    s = asyncio.run(replay(url, tr, prof, slo_s=slo, gpus=gpus, time_scale=time_scale, seed=seed))
    if as_json:
        keys = (*SUMMARY_KEYS, "http_status")
        typer.echo(json.dumps({"live": {k: s[k] for k in keys}}, indent=1))
        return
    title = f"{url}: {len(tr)} requests, HTTP status {json.dumps(s['http_status'])}"
    console.print(summary_table(title, {"live": s}, prof.metric.name, first="run"))
