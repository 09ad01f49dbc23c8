"""SIGTERM drains: requests in flight finish with their images, new connections are
refused, and the server exits without an error (a real `hadis serve` process)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.serve_helpers import free_port

pytestmark = pytest.mark.slow


def test_sigterm_lets_requests_in_flight_finish_then_exits() -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # the paper pool at time scale 1: a batch takes seconds, so requests are still in
    # flight when the signal comes
    proc = subprocess.Popen(
        [sys.executable, "-m", "hadis.cli.main", "serve", "--profile", "hadis-l40s",
         "--executor", "profile", "--workers", "2", "--time-scale", "1",
         "--router", "reference", "--discriminator", "reference", "--port", str(port),
         "--shutdown-timeout", "60"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("server did not become ready")
        results: list[int] = []

        def ask(i: int) -> None:
            body = {"prompt": f"a cat {i}"}
            r = httpx.post(f"{base}/v1/images/generations", json=body, timeout=60)
            results.append(r.status_code)

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        time.sleep(1.0)  # all three accepted and queued or running
        assert results == []  # none has finished yet
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/healthz", timeout=2)
        for t in threads:
            t.join(timeout=60)
        assert results == [200, 200, 200]
        # uvicorn re-raises the signal once it has shut down cleanly
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        assert b"Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
