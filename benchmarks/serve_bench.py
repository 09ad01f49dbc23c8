"""Data-plane overhead of the live server: the `instant` executor (no generation time)
behind the full HTTP path, uvicorn in its own process, load from `wrk` (Debian package
`wrk`; needed for this benchmark: a Python client would be the bottleneck on 2 cores).

Reports sustained requests/s and p50/p99 latency, i.e. what hadis adds to a request, at
1, 4 and 16 connections in flight.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.serve_helpers import free_port

SCRIPT = Path(__file__).with_name("post.lua")


def _wrk(url: str, connections: int, seconds: int = 6) -> dict[str, str]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(SCRIPT), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = {
        k: m.group(1)
        for k, pat in (
            ("p50", r"50%\s+(\S+)"),
            ("p99", r"99%\s+(\S+)"),
            ("rps", r"Requests/sec:\s+(\S+)"),
            ("non2xx", r"Non-2xx or 3xx responses:\s+(\d+)"),
        )
        if (m := re.search(pat, out))
    }
    return found


def main() -> None:
    if shutil.which("wrk") is None:
        print("serve benchmark skipped: install wrk (apt-get install wrk)")
        return
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hadis.cli.main",
            "serve",
            "--executor",
            "instant",
            "--workers",
            "16",
            "--max-queue",
            "100000",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        print(
            "serve data plane: instant executor, 16 workers, paper profile, wrk on the same machine"
        )
        print(f"{'connections':>11} {'requests/s':>11} {'p50':>9} {'p99':>9} {'non-2xx':>8}")
        for c in (1, 4, 16):
            r = _wrk(f"{base}/v1/images/generations", c)
            print(
                f"{c:>11} {r.get('rps', '?'):>11} {r.get('p50', '?'):>9} "
                f"{r.get('p99', '?'):>9} {r.get('non2xx', '0'):>8}"
            )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
