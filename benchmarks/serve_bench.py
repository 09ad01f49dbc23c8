"""Data-plane overhead of the live server, measured with `wrk` (Debian package `wrk`; a
Python client would be the bottleneck on 2 cores) on the same machine.

Settings are explicit: `hadis serve --profile hadis-l40s --executor instant --workers 16
--router reference --discriminator reference --max-queue 100000` (the instant executor
returns placeholder 1024x1024 PNGs at once, so what is timed is HTTP, validation, routing,
the engine and the worker threads), requests from `post.lua` (a 1024x1024 image, a size
that pool serves). Reference in the same run: `benchmarks/echo_app.py`, a bare FastAPI app
under the same uvicorn, parsing the same body. Any non-2xx response or socket error fails
the benchmark: a throughput of errors is not a throughput.

The dashboard's cost: at 4 connections, runs with one dashboard viewer open (a client
reading /dashboard/events, as the page does) alternate with runs without, three each; the
figure is the ratio of their mean requests/s (target: within 5%).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from benchmarks.report import BenchmarkFailed, Figure, at_least, at_most

SUITE = "serve"
SCRIPT = Path(__file__).with_name("post.lua")
HADIS_SERVE = [
    "serve",
    "--profile",
    "hadis-l40s",
    "--executor",
    "instant",
    "--workers",
    "16",
    "--router",
    "reference",
    "--discriminator",
    "reference",
    "--max-queue",
    "100000",
]
PATH = "/v1/images/generations"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise BenchmarkFailed(f"cannot read wrk latency {text!r}")
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[m.group(2)]


def wrk(url: str, connections: int, seconds: int) -> dict[str, float]:
    """Requests/s, p50/p99 ms; raises on any non-2xx response or socket error."""
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(SCRIPT), url],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BenchmarkFailed(f"wrk failed: {(done.stderr or done.stdout).strip()[-300:]}")
    out = done.stdout
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        raise BenchmarkFailed(f"{m.group(1)} non-2xx responses at {connections} connections")
    if m := re.search(r"Socket errors:.*", out):
        raise BenchmarkFailed(f"{m.group(0)} at {connections} connections")
    rps = re.search(r"Requests/sec:\s+(\S+)", out)
    # anchored: a stdev percentage such as "62.50%" must not pass for the 50% line
    p50 = re.search(r"^\s*50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.M)
    if not (rps and p50 and p99):
        raise BenchmarkFailed(f"unexpected wrk output:\n{out}")
    return {"rps": float(rps.group(1)), "p50_ms": _ms(p50.group(1)), "p99_ms": _ms(p99.group(1))}


class _Server:
    """A server subprocess on a free port, ready when /readyz answers 200."""

    def __init__(self, argv: list[str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        # a file, not a pipe: the server logs a line per request, which would fill a pipe
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in __exit__)
        self.proc = subprocess.Popen(
            [*argv, "--port", str(self.port)], stdout=subprocess.DEVNULL, stderr=self.log
        )

    def __enter__(self) -> _Server:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                err = self.log.read().decode(errors="replace")
                raise BenchmarkFailed(f"server exited: {err.strip()[-500:]}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise BenchmarkFailed("server did not become ready in 120 s")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


def _check_one(base: str) -> None:
    body = {"prompt": "a red circle left of a blue square", "size": "1024x1024"}
    r = httpx.post(f"{base}{PATH}", json=body, timeout=30)
    if r.status_code != 200:
        raise BenchmarkFailed(f"a single request failed before timing: {r.status_code} {r.text}")


class _Viewer:
    """One dashboard viewer: the state once, then the event stream, in a thread."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.events = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        httpx.get(f"{self.base}/dashboard/state", timeout=10).raise_for_status()
        with httpx.stream("GET", f"{self.base}/dashboard/events", timeout=10) as res:
            for line in res.iter_lines():
                if line.startswith("data:"):
                    self.events += 1
                if self._stop.is_set():
                    return

    def __enter__(self) -> _Viewer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def dashboard_cost(base: str, seconds: int, rounds: int) -> tuple[float, float]:
    """Mean requests/s at 4 connections without and with one dashboard viewer."""
    plain, viewed = [], []
    for _ in range(rounds):
        plain.append(wrk(f"{base}{PATH}", 4, seconds)["rps"])
        with _Viewer(base) as viewer:
            viewed.append(wrk(f"{base}{PATH}", 4, seconds)["rps"])
        if viewer.events < seconds - 1:
            raise BenchmarkFailed(f"the dashboard viewer got {viewer.events} events in {seconds} s")
    return sum(plain) / rounds, sum(viewed) / rounds


def run(tiny: bool = False) -> list[Figure]:
    if shutil.which("wrk") is None:
        raise BenchmarkFailed("the serve benchmark needs wrk (apt-get install wrk)")
    seconds = 1 if tiny else 6
    levels = (4,) if tiny else (1, 4, 16)
    hadis = [sys.executable, "-m", "hadis.cli.main", *HADIS_SERVE]
    root = str(Path(__file__).resolve().parent.parent)
    echo = [sys.executable, "-m", "uvicorn", "benchmarks.echo_app:app", "--app-dir", root]
    echo += ["--log-level", "error"]
    results: dict[str, dict[int, dict[str, float]]] = {}
    for label, argv in (("echo", echo), ("hadis", hadis)):
        with _Server(argv) as server:
            if label == "hadis":
                _check_one(server.base)
            wrk(f"{server.base}{PATH}", 4, 1)  # warm-up
            results[label] = {c: wrk(f"{server.base}{PATH}", c, seconds) for c in levels}
            if label == "hadis":
                plain, viewed = dashboard_cost(server.base, max(seconds, 3), 1 if tiny else 3)
    settings = {"command": "hadis " + " ".join(HADIS_SERVE), "wrk_seconds": seconds}
    figures = []
    for c in levels:
        h, e = results["hadis"][c], results["echo"][c]
        s = {**settings, "connections": c}
        figures.append(
            Figure(
                SUITE,
                f"{c} connection(s): requests/s",
                h["rps"],
                "req/s",
                s,
                target=at_least(1000.0) if c == 4 else None,
                ratio=h["rps"] / e["rps"],
                ratio_of=f"bare FastAPI echo ({e['rps']:,.0f} req/s)",
            )
        )
        figures.append(Figure(SUITE, f"{c} connection(s): p50", h["p50_ms"], "ms", s))
        figures.append(
            Figure(
                SUITE,
                f"{c} connection(s): p99",
                h["p99_ms"],
                "ms",
                s,
                target=at_most(10.0) if c == 4 else None,
                ratio=h["p99_ms"] / e["p99_ms"],
                ratio_of=f"bare FastAPI echo ({e['p99_ms']:.2f} ms)",
            )
        )
    figures.append(
        Figure(
            SUITE,
            "4 connections, one dashboard viewer: requests/s vs none",
            viewed / plain,
            "ratio",
            {**settings, "connections": 4, "wrk_seconds": max(seconds, 3)},
            target=at_least(0.95),
            ratio=viewed / plain,
            ratio_of=f"no viewer ({plain:,.0f} req/s; with: {viewed:,.0f})",
        )
    )
    return figures
