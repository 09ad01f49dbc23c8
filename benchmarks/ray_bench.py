"""The Ray backend's cost against the in-process one.

1. Per-batch dispatch overhead: one worker of each backend (`instant` executor: the batch
   itself takes no time), a batch of one 1024x1024 image sent and its result back, one at a
   time, `n` times; p50/p99 of the round trip, and the p99 the Ray backend adds (target
   <= 5 ms). Ray runs as a local instance on this machine (actor calls cross processes;
   across machines add the network).
2. Requests/s through the API (wrk, 128 connections: enough outstanding requests that the
   planner, not the client, sets the pace): `hadis serve --backend ray --profile hadis-l40s
   --executor profile --time-scale 0.01 --workers 16 --worker-cpus 0.1`, timed after a 15 s
   warm-up (target >= 300 req/s on 2 cores); the same command with the local backend in the
   same run is the reference.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import numpy as np

from benchmarks.report import BenchmarkFailed, Figure, at_least, at_most
from benchmarks.serve_bench import PATH, SCRIPT, _check_one, _Server, wrk

SUITE = "ray"
CONNECTIONS = 128
WARM_UP_S = 15  # the planner scales up from its initial demand guess (not timed)
SERVE = [
    "serve",
    "--profile",
    "hadis-l40s",
    "--executor",
    "profile",
    "--time-scale",
    "0.01",
    "--router",
    "reference",
    "--discriminator",
    "reference",
    "--max-queue",
    "100000",
]


def _round_trips(backend_name: str, n: int) -> np.ndarray:
    """Seconds per batch round trip through one worker of the backend."""
    from hadis.profiles import load_profile
    from hadis.serve import worker_backend
    from hadis.workers.base import BatchJob

    profile = load_profile("hadis-l40s")
    options = {"num_cpus": 0.5} if backend_name == "ray" else {}
    backend = worker_backend(
        profile, backend=backend_name, executor="instant", discriminator="reference", **options
    )
    try:
        worker = backend.spawn(0)
        worker.ready().result(timeout=120)
        model = profile.models[0].name
        worker.load(model).result(timeout=60)
        job = BatchJob(model, ["a cat"], [0], (1024, 1024), [None], [None])
        times = []
        for i in range(n + 20):  # the first 20 warm up
            t = time.perf_counter()
            out = worker.run(job).result(timeout=60)
            if i >= 20:
                times.append(time.perf_counter() - t)
            if len(out.images) != 1 or not out.images[0].startswith(b"\x89PNG"):
                raise BenchmarkFailed(f"{backend_name}: a batch returned no image")
        return np.array(times)
    finally:
        backend.close()


def _warm_up(url: str, seconds: int, connections: int) -> None:
    """Load without timing: the cold start (the first plans, 504s while the planner scales
    up) is the overload benchmark's subject, not this one's."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(SCRIPT), url]
    subprocess.run(cmd, capture_output=True, check=False)


def run(tiny: bool = False) -> list[Figure]:
    try:
        import ray
    except ImportError:
        raise BenchmarkFailed("the ray benchmark needs the [ray] extra") from None
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    n = 50 if tiny else 1000
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="hadis-bench")
    try:
        local, remote = _round_trips("local", n), _round_trips("ray", n)
    finally:
        ray.shutdown()
    settings = {"batches": n, "executor": "instant", "image": "1024x1024", "ray": "local"}
    figures = []
    for q in (50, 99):
        lq, rq = np.percentile(local, q) * 1e3, np.percentile(remote, q) * 1e3
        figures.append(Figure(SUITE, f"dispatch p{q}, local backend", lq, "ms", settings))
        figures.append(Figure(SUITE, f"dispatch p{q}, ray backend", rq, "ms", settings))
    added = (np.percentile(remote, 99) - np.percentile(local, 99)) * 1e3
    figures.append(
        Figure(SUITE, "dispatch p99 added by ray", added, "ms", settings, target=at_most(5.0))
    )
    if shutil.which("wrk") is None:
        raise BenchmarkFailed("the ray benchmark's API figure needs wrk (apt-get install wrk)")
    # tiny: 4 workers, so that 4 actors start in seconds on a busy 2-core machine
    # (tiny: 8 connections, a load 4 workers on a busy 2-core machine take without 429s)
    seconds, workers, warm, conns = (2, 4, 6, 8) if tiny else (10, 16, WARM_UP_S, CONNECTIONS)
    serve = [*SERVE, "--workers", str(workers)]
    if tiny:  # 5x slower batches: a fresh CI machine's hiccups then stay inside the SLO
        # (at 0.01, one CI run got 301 non-2xx answers from 4 actors on 2 busy cores)
        serve[serve.index("--time-scale") + 1] = "0.05"
    rps = {}
    for backend, extra in (("local", []), ("ray", ["--worker-cpus", "0.1"])):
        argv = [sys.executable, "-m", "hadis.cli.main", *serve, "--backend", backend, *extra]
        with _Server(argv) as server:
            _check_one(server.base)
            _warm_up(f"{server.base}{PATH}", warm, conns)
            try:
                rps[backend] = wrk(f"{server.base}{PATH}", conns, seconds)
            except BenchmarkFailed as e:
                raise BenchmarkFailed(f"{backend} backend: {e}") from None
    api = {"command": "hadis " + " ".join(serve) + " --backend ray --worker-cpus 0.1"}
    api |= {"connections": conns, "wrk_seconds": seconds, "warm_up_s": warm}
    figures.append(
        Figure(
            SUITE,
            "API requests/s, ray backend",
            rps["ray"]["rps"],
            "req/s",
            api,
            target=at_least(300.0),
            ratio=rps["ray"]["rps"] / rps["local"]["rps"],
            ratio_of="the local backend, same command",
        )
    )
    figures.append(Figure(SUITE, "API p99, ray backend", rps["ray"]["p99_ms"], "ms", api))
    return figures
