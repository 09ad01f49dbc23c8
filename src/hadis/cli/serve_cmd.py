"""`hadis serve` and `hadis load`: the live server and an HTTP load generator."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from pathlib import Path
from urllib.parse import urlsplit

import typer

from hadis.cli.common import (
    BATCH_WAIT_HELP,
    DEVICE_MEMORY_OPTION,
    POINT_SECONDS_OPTION,
    QPS_OPTION,
    SUMMARY_KEYS,
    TRACE_OPTION,
    console,
    err_console,
    summary_table,
    user_errors,
    with_device_memory,
)
from hadis.cli.trace_cmd import resolve_trace
from hadis.core.config import HOST_CACHE
from hadis.core.plan import DEFAULT_BATCH_WAIT
from hadis.errors import HadisError
from hadis.planner import policy_names
from hadis.profiles import load_profile
from hadis.routing.registry import discriminator_names, router_names
from hadis.workers.base import backend_names, default_worker_gpus, worker_count
from hadis.workers.executors import executor_names

LOG_LEVELS = ("debug", "info", "warning", "error")


@user_errors
def serve_command(
    profile: str = typer.Option(
        "demo-cpu",
        help="Bundled profile name or profile file (default: the bundled CPU demo pool).",
    ),
    workers: str | None = typer.Option(
        None,
        help="Workers (device slots), one model each (default: the profile's, else 1); "
        "'auto' (ray backend): as many as the cluster's resources hold, following nodes that "
        "join.",
    ),
    backend: str = typer.Option(
        "local",
        help="Where workers run: local (threads of this process) or ray (one actor per "
        "worker on a Ray cluster; the [ray] extra).",
    ),
    ray_address: str | None = typer.Option(
        None,
        help="ray backend: the cluster to join ('auto', or HOST:PORT of its head); default: "
        "start a local Ray instance.",
    ),
    ray_namespace: str = typer.Option(
        "hadis", help="ray backend: namespace of the worker actors (hadis-worker-<i>)."
    ),
    worker_cpus: float = typer.Option(1.0, help="ray backend: CPUs each worker reserves."),
    worker_gpus: float | None = typer.Option(
        None,
        help="ray backend: GPUs each worker reserves (fractional: models share a device; "
        "default: 1 with a cuda --device, else 0).",
    ),
    executor: str | None = typer.Option(
        None,
        help=f"{' or '.join(executor_names())} (profile: simulated latencies, placeholder images, "
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
        None, help=f"Router: {', '.join(router_names())} (default: the profile's, else reference)."
    ),
    discriminator: str | None = typer.Option(
        None,
        help=f"Discriminator: {', '.join(discriminator_names())} "
        "(default: the profile's, else reference).",
    ),
    device: str = typer.Option("cpu", help="diffusers executor: torch device (cpu, cuda)."),
    dtype: str = typer.Option("float32", help="diffusers executor: float32, float16, bfloat16."),
    max_queue: int = typer.Option(1000, help="Queued queries beyond which requests get 429."),
    seed: int = typer.Option(0, help="Seed for the random router/discriminator."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    log_level: str = typer.Option(
        "info", help="Log level: debug, info (one line per request), warning, error."
    ),
    api_key: list[str] = typer.Option(
        [],
        "--api-key",
        envvar="HADIS_API_KEY",
        help="Require 'Authorization: Bearer KEY' (repeatable; also HADIS_API_KEY). Health "
        "probes stay open.",
    ),
    protect_metrics: bool = typer.Option(
        False, "--protect-metrics", help="With --api-key: /metrics needs a key too."
    ),
    max_body_bytes: int = typer.Option(
        1 << 20, help="Largest request body accepted (larger: 413)."
    ),
    docs: bool = typer.Option(False, "--docs", help="Serve /docs and /openapi.json."),
    shutdown_timeout: float = typer.Option(
        30.0,
        "--drain-timeout",
        "--shutdown-timeout",
        help="On SIGTERM/Ctrl-C: seconds that requests in flight and queued get to finish "
        "before the rest end with 503.",
    ),
    body_timeout: float = typer.Option(
        30.0, help="Seconds a request body may take to arrive (408 beyond)."
    ),
    watchdog_factor: float = typer.Option(
        10.0,
        help="A batch still running after this many times its profiled latency (+1 s) is "
        "hung: its worker is taken out of service and restarted.",
    ),
    restart_after: float = typer.Option(
        30.0, help="Seconds before a worker taken out of service restarts."
    ),
    chaos: list[str] = typer.Option(
        [],
        "--chaos",
        help="Testing aid, never in production: inject faults (repeatable): fail:WORKER "
        "(that worker fails every batch), fail-rate:P (every batch fails with probability P), "
        "hang:WORKER (that worker's batches never finish).",
    ),
    load_timeout: float = typer.Option(
        600.0,
        help="Seconds the first models may take to load (failed loads are retried with "
        "backoff meanwhile); then the server exits with status 3. 0: wait forever.",
    ),
    ssl_keyfile: str | None = typer.Option(None, help="Serve HTTPS: the TLS key file."),
    ssl_certfile: str | None = typer.Option(None, help="Serve HTTPS: the TLS certificate."),
    allowed_origins: list[str] = typer.Option(
        [],
        "--allowed-origins",
        help="CORS: a browser origin allowed to call the API (repeatable; '*' for any).",
    ),
    timeout_keep_alive: int = typer.Option(
        5, help="Seconds an idle keep-alive connection stays open."
    ),
    limit_concurrency: int | None = typer.Option(
        None,
        help="Connections and requests in flight beyond which new ones get 503 (uvicorn's "
        "plain-text answer; default: no limit).",
    ),
    host_cache: int = typer.Option(
        HOST_CACHE,
        help="Models each worker keeps in host memory besides the one on its device, so "
        "moving back to one is a copy, not a load from disk (each costs host RAM).",
    ),
    device_memory: float | None = DEVICE_MEMORY_OPTION,
    batch_wait: float = typer.Option(DEFAULT_BATCH_WAIT, help=BATCH_WAIT_HELP),
    gallery: int = typer.Option(
        0,
        help="Keep the last N requests (prompt, thumbnail, path) for the dashboard's gallery; "
        "0 (default) keeps none: prompts are user data.",
    ),
) -> None:
    """Serve the OpenAI-compatible images API with the HADIS engine.

    With no options: the bundled demo pool of tiny text-to-image models on this CPU.
    """
    import uvicorn

    from hadis.serve import ServeConfig, build_app, serving_choices, worker_backend
    from hadis.workers.chaos import Chaos

    if not 0 < port < 65536:
        raise HadisError(f"--port must be in 1..65535, got {port}")
    if policy not in policy_names():
        raise HadisError(f"unknown policy {policy!r}; valid: {', '.join(policy_names())}")
    if log_level.lower() not in LOG_LEVELS:
        raise HadisError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    if max_queue < 1:
        raise HadisError(f"--max-queue must be >= 1, got {max_queue}")
    if not 1 < watchdog_factor < math.inf:
        raise HadisError(f"--watchdog-factor must be > 1, got {watchdog_factor}")
    if not 0 <= restart_after < math.inf:
        raise HadisError(f"--restart-after must be >= 0 seconds, got {restart_after}")
    if not 0 <= shutdown_timeout < math.inf:
        raise HadisError(f"--drain-timeout must be >= 0 seconds, got {shutdown_timeout}")
    if not 0 < body_timeout < math.inf:
        raise HadisError(f"--body-timeout must be > 0 seconds, got {body_timeout}")
    if not 0 <= load_timeout < math.inf:
        raise HadisError(f"--load-timeout must be >= 0 seconds, got {load_timeout}")
    if (ssl_keyfile is None) != (ssl_certfile is None):
        raise HadisError("--ssl-keyfile and --ssl-certfile go together")
    for path in (ssl_keyfile, ssl_certfile):
        if path is not None and not Path(path).is_file():
            raise HadisError(f"no such file: {path}")
    if timeout_keep_alive < 1:
        raise HadisError(f"--timeout-keep-alive must be >= 1, got {timeout_keep_alive}")
    if limit_concurrency is not None and limit_concurrency < 1:
        raise HadisError(f"--limit-concurrency must be >= 1, got {limit_concurrency}")
    if max_body_bytes < 1024:
        raise HadisError(f"--max-body-bytes must be >= 1024, got {max_body_bytes}")
    if any(not k.strip() for k in api_key):
        raise HadisError("--api-key must not be empty")
    if not (time_scale > 0 and math.isfinite(time_scale)):
        raise HadisError(f"--time-scale must be > 0, got {time_scale}")
    n_workers = _parse_workers(workers)
    if backend not in backend_names():
        raise HadisError(f"unknown backend {backend!r}; valid: {', '.join(backend_names())}")
    if backend != "ray" and (n_workers == "auto" or ray_address is not None):
        raise HadisError("--workers auto and --ray-address need --backend ray")
    if executor is not None and executor not in executor_names():
        valid = ", ".join(executor_names())
        raise HadisError(f"unknown executor {executor!r}; valid: {valid}")
    if host_cache < 0:
        raise HadisError(f"--host-cache must be >= 0 models, got {host_cache}")
    prof = with_device_memory(load_profile(profile), device_memory)
    chosen = serving_choices(
        prof, executor=executor, router=router, discriminator=discriminator, slo_s=slo
    )
    executor, router, discriminator = chosen.executor, chosen.router, chosen.discriminator
    options: dict = {}
    if backend == "ray":
        gpus = worker_gpus if worker_gpus is not None else default_worker_gpus(device)
        options = {
            "address": ray_address,
            "namespace": ray_namespace,
            "num_cpus": worker_cpus,
            "num_gpus": gpus,
        }
    faults = Chaos.parse(chaos, seed)
    pool = worker_backend(
        prof,
        chaos=faults,
        host_cache=host_cache,
        backend=backend,
        executor=executor,
        discriminator=discriminator,
        seed=seed,
        time_scale=time_scale,
        device=device,
        dtype=dtype,
        **options,
    )
    workers_auto = n_workers == "auto"
    try:
        n = worker_count(n_workers, pool, chosen.workers)
    except HadisError:
        pool.close()
        raise
    if faults is not None:
        beyond = sorted(w for w in faults.fail | faults.hang if w >= n)
        if beyond:
            pool.close()
            raise HadisError(f"--chaos names worker {beyond[0]}, but there are {n} (0..{n - 1})")
        err_console.print(f"chaos on (testing aid): {', '.join(chaos)}")
    config = ServeConfig(
        workers=n,
        elastic=workers_auto,
        slo_s=chosen.slo_s,
        policy=policy,
        time_scale=time_scale,
        seed=seed,
        max_queue=max_queue,
        api_keys=tuple(api_key),
        protect_metrics=protect_metrics,
        max_body_bytes=max_body_bytes,
        docs=docs,
        gallery=gallery,
        host_cache=host_cache,
        batch_wait=batch_wait,
        watchdog_factor=watchdog_factor,
        restart_after_s=restart_after,
        load_timeout_s=load_timeout,
        body_timeout_s=body_timeout,
        allowed_origins=tuple(allowed_origins),
    )
    base = f"http://{host}:{port}"

    def ready() -> None:
        console.print(
            f"hadis is ready: {prof.name}, {n} workers ({executor} executor, "
            f"{backend} backend)\n"
            f"  OpenAI base_url: {base}/v1\n"
            f"  metrics:         {base}/metrics\n"
            f"  dashboard:       {base}/dashboard",
            highlight=False,
            soft_wrap=True,
        )

    servers: list = []  # the uvicorn server, once made (the app's failure stops it)
    app = build_app(
        prof,
        config,
        executor=executor,
        router=router,
        discriminator=discriminator,
        device=device,
        dtype=dtype,
        on_ready=ready,
        backend=pool,
        on_failed=lambda: setattr(servers[0], "should_exit", True),  # uvicorn stops
    )
    logging.basicConfig(level=log_level.upper(), format="%(message)s")
    err_console.print(f"starting hadis on {base} (loading models) ...")
    # SIGTERM: stop accepting, let requests in flight finish (up to the timeout), then the
    # service ends whatever is still queued with an explicit 503
    grace = shutdown_timeout
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=max(1, math.ceil(grace)),
            timeout_keep_alive=timeout_keep_alive,
            limit_concurrency=limit_concurrency,
            ssl_keyfile=ssl_keyfile,
            ssl_certfile=ssl_certfile,
        )
    )
    servers.append(server)
    server.run()
    if app.state.service.startup_failed:
        err_console.print(
            f"error: the models did not load within {load_timeout:g}s (see the log above)"
        )
        raise typer.Exit(3)


def _parse_workers(text: str | None) -> int | str | None:
    """--workers: a count >= 1, 'auto', or None (the profile's)."""
    if text is None or text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        raise HadisError(f"--workers must be a number or 'auto', got {text!r}") from None
    if n < 1:
        raise HadisError(f"--workers must be >= 1, got {n}")
    return n


@user_errors
def load_command(
    url: str = typer.Option("http://127.0.0.1:8000", help="Server base URL."),
    trace: str = TRACE_OPTION,
    qps: str | None = QPS_OPTION,
    point_seconds: float = POINT_SECONDS_OPTION,
    time_scale: float | None = typer.Option(
        None,
        help="The server's time scale (default: read from the server; a different "
        "value is refused).",
    ),
    profile: str | None = typer.Option(
        None, help="Profile for quality (default: the server's, when it is a bundled one)."
    ),
    slo: float | None = typer.Option(None, help="SLO in profile seconds (default: the server's)."),
    seed: int = typer.Option(0, help="Trace seed."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Replay a trace against a running server and report violations and served quality.

    Profile, SLO, workers and time scale come from the server (/v1/plan). Ctrl-C stops the
    replay and prints the summary of the requests that ended."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from hadis.loadgen import Replay, run_replay, server_info

    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise HadisError(f"--url must look like http://HOST:PORT, got {url!r}")
    try:
        _ = parsed.port
    except ValueError:
        raise HadisError(f"--url has an invalid port: {url!r}") from None
    if time_scale is not None and not (time_scale > 0 and math.isfinite(time_scale)):
        raise HadisError(f"--time-scale must be > 0, got {time_scale}")
    tr = resolve_trace(trace, qps, point_seconds, seed)
    info = asyncio.run(server_info(url))
    served_scale = float(info["time_scale"])
    if time_scale is not None and not math.isclose(time_scale, served_scale, rel_tol=1e-9):
        raise HadisError(
            f"--time-scale {time_scale:g} differs from the server's {served_scale:g}; "
            "leave it out to use the server's"
        )
    if slo is not None and not math.isclose(slo, float(info["slo_s"]), rel_tol=1e-9):
        raise HadisError(f"--slo {slo:g} differs from the server's {info['slo_s']:g}")
    try:
        prof = load_profile(profile or info["profile"])
    except HadisError:
        raise HadisError(
            f"the server serves profile {info['profile']!r}, which is not bundled: "
            "pass --profile FILE with its profile file"
        ) from None
    slo_s, gpus = float(info["slo_s"]), len(info["workers"])
    state = Replay(tr)
    interrupted = False
    with Progress(
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        transient=True,
        disable=as_json,
    ) as bar:
        task = bar.add_task("replay", total=len(tr))
        try:
            asyncio.run(
                run_replay(
                    state,
                    url,
                    slo_s=slo_s,
                    time_scale=served_scale,
                    seed=seed,
                    progress=lambda f: bar.update(task, completed=state.done),
                )
            )
        except KeyboardInterrupt:
            interrupted = True
    if state.done == 0:
        raise HadisError("stopped before any request ended")
    s = state.summary(prof, slo_s=slo_s, gpus=gpus).to_dict()
    if as_json:
        keys = (*SUMMARY_KEYS, "http_status")
        typer.echo(json.dumps({"live": {k: s[k] for k in keys}}, indent=1))
    else:
        title = (
            f"{url} ({prof.name}, {gpus} workers, SLO {slo_s:g} s, time scale "
            f"{served_scale:g}): {state.done} of {len(tr)} requests, HTTP status "
            f"{json.dumps(s['http_status'])}"
        )
        console.print(summary_table(title, {"live": s}, prof.metric.name, first="run"))
    if interrupted:
        err_console.print(f"interrupted: summary of the {state.done} requests that ended")
        raise typer.Exit(130)
