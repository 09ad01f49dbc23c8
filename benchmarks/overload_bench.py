"""Overload: goodput from a cold start against the same load warm, what became of every
request, memory, and goodput with one worker failing every batch.

Settings: `hadis serve --profile hadis-l40s --executor profile --time-scale 0.01 --workers
16 --router reference --discriminator reference` (local backend), loaded by wrk with 256
connections (closed loop: far more requests outstanding than the pool serves within its
SLO, so admission control has to turn some away). Goodput = requests answered 200 per
second. Each request's outcome comes from the server's own counter
(`hadis_requests_total{outcome}`), so a request is lost only if the counter and wrk's count
disagree beyond the connections still open when wrk stops.

1. Cold: a fresh server, 10 s of that load at once; warm: the next 10 s (target: cold
   goodput >= 0.8 of warm).
2. RSS of the server before and after.
3. The same with `--chaos fail:0` (worker 0 fails every batch): warm goodput against the
   healthy warm goodput (target >= 0.9), and the share of admitted requests served
   (target >= 99%; requests whose client left, as wrk's connections do when it stops, are
   not counted).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time

import httpx

from benchmarks.report import BenchmarkFailed, Figure, at_least
from benchmarks.serve_bench import PATH, SCRIPT, _check_one, _Server

SUITE = "overload"
CONNECTIONS = 256
DEADLINE_S = 1.5  # a request's deadline, 2 x SLO 60 s x time scale 0.01, and a margin
SERVE = [
    "serve", "--profile", "hadis-l40s", "--executor", "profile", "--time-scale", "0.01",
    "--workers", "16", "--router", "reference", "--discriminator", "reference",
]  # fmt: skip


def _outcomes(base: str) -> dict[str, float]:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(r'^hadis_requests_total\{outcome="(\w+)"\} (\S+)$', text, re.M)
    }


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise BenchmarkFailed("cannot read the server's RSS")


def _load(base: str, seconds: int) -> dict[str, float]:
    """wrk's request count and the server's outcomes over one run."""
    time.sleep(DEADLINE_S)  # requests of the run before have ended (served or timed out)
    before = _outcomes(base)
    done = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", str(SCRIPT), f"{base}{PATH}"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BenchmarkFailed(f"wrk failed: {done.stderr.strip()[-300:]}")
    if m := re.search(r"Socket errors:.*", done.stdout):
        raise BenchmarkFailed(f"{m.group(0)}")
    sent = re.search(r"(\d+) requests in", done.stdout)
    if sent is None:
        raise BenchmarkFailed(f"unexpected wrk output:\n{done.stdout}")
    after = _outcomes(base)
    out = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    out["wrk_requests"] = float(sent.group(1))
    out["goodput"] = out.get("ok", 0.0) / seconds
    return out


def _check_nothing_lost(run: dict[str, float], label: str) -> None:
    counted = sum(v for k, v in run.items() if k not in ("wrk_requests", "goodput"))
    # wrk counts the responses it read; the server also counts those it answered to
    # connections wrk closed at the end (at most one per connection)
    if not run["wrk_requests"] <= counted <= run["wrk_requests"] + CONNECTIONS:
        raise BenchmarkFailed(
            f"{label}: wrk read {run['wrk_requests']:.0f} responses, the server ended "
            f"{counted:.0f} requests: some were lost"
        )
    bad = {k: v for k, v in run.items() if k == "invalid" and v > 0}
    if bad:
        raise BenchmarkFailed(f"{label}: unexpected outcomes {bad}")


def run(tiny: bool = False) -> list[Figure]:
    if shutil.which("wrk") is None:
        raise BenchmarkFailed("the overload benchmark needs wrk (apt-get install wrk)")
    seconds = 3 if tiny else 10
    hadis = [sys.executable, "-m", "hadis.cli.main", *SERVE]
    settings = {"command": "hadis " + " ".join(SERVE), "connections": CONNECTIONS}
    settings["seconds"] = seconds
    with _Server(hadis) as server:
        _check_one(server.base)
        rss_before = _rss_mb(server.proc.pid)
        cold = _load(server.base, seconds)
        warm = _load(server.base, seconds)
        rss_after = _rss_mb(server.proc.pid)
    with _Server([*hadis, "--chaos", "fail:0"]) as server:
        _check_one(server.base)
        _load(server.base, seconds)  # warm-up (worker 0 gets quarantined)
        faulty = _load(server.base, seconds)
    for label, r in (("cold", cold), ("warm", warm), ("chaos", faulty)):
        _check_nothing_lost(r, label)
    # admitted and ended by the server (a request whose client left, as wrk's connections
    # do when it stops, is not the server's to serve)
    left = ("rejected", "disconnected", "wrk_requests", "goodput")
    admitted = sum(v for k, v in faulty.items() if k not in left)
    figures = [
        Figure(SUITE, "goodput, cold", cold["goodput"], "req/s", settings),
        Figure(SUITE, "goodput, warm", warm["goodput"], "req/s", settings),
        Figure(
            SUITE,
            "goodput, cold / warm",
            cold["goodput"] / warm["goodput"],
            "ratio",
            settings,
            target=at_least(0.8),
        ),
    ]
    for label, r in (("cold", cold), ("warm", warm)):
        for outcome in ("ok", "rejected", "timeout", "disconnected"):
            figures.append(
                Figure(SUITE, f"{label}: requests {outcome}", r.get(outcome, 0.0), "", settings)
            )
    figures += [
        Figure(SUITE, "server RSS before", rss_before, "MB", settings),
        Figure(SUITE, "server RSS after", rss_after, "MB", settings),
        Figure(
            SUITE,
            "goodput with worker 0 failing every batch / healthy warm",
            faulty["goodput"] / warm["goodput"],
            "ratio",
            {**settings, "chaos": "fail:0"},
            target=at_least(0.9),
        ),
        Figure(
            SUITE,
            "admitted requests served with worker 0 failing every batch",
            100.0 * faulty.get("ok", 0.0) / max(admitted, 1.0),
            "%",
            {**settings, "chaos": "fail:0"},
            target=at_least(99.0),
        ),
    ]
    return figures
