"""Start-up that fails loudly: a model that cannot load is retried with backoff, /readyz
says so without internals, and the server gives up after --load-timeout (the CLI exits 3);
CORS preflights for browser clients."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from dataclasses import replace

import httpx
import pytest

from hadis.routing.simple import NoDiscriminator, NoRouter
from hadis.serve import ServeConfig, build_app
from hadis.serve.api import create_app
from hadis.serve.prom import ServerMetrics
from hadis.serve.service import LiveService
from hadis.workers.executors import ProfileExecutor
from tests.serve_helpers import free_port


def _service(profile, cfg: ServeConfig, fail_loads: int, on_failed=None) -> LiveService:
    """A service whose workers' first `fail_loads` model loads fail."""
    loads = {"n": 0}

    class Flaky(ProfileExecutor):
        def load(self, model):
            loads["n"] += 1
            if loads["n"] <= fail_loads:
                raise RuntimeError("disk on fire at /secret/path")
            return super().load(model)

    service = LiveService(
        profile,
        cfg,
        lambda: Flaky(profile, cfg.time_scale, 0.0),
        NoRouter(),
        NoDiscriminator(),
        on_failed=on_failed,
    )
    service.loads = loads  # type: ignore[attr-defined]
    return service


def test_a_failed_load_is_retried_until_it_loads(paper_profile):
    cfg = ServeConfig(workers=1, time_scale=0.01, load_timeout_s=30)
    service = _service(paper_profile, cfg, fail_loads=2)
    app = create_app(service, ServerMetrics(cfg.time_scale))

    async def go():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://h") as c:
                while not service.workers.load_errors:
                    await asyncio.sleep(0.01)
                unready = await c.get("/readyz")
                deadline = time.monotonic() + 20
                while not service.ready and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                return unready, await c.get("/readyz")

    unready, ready = asyncio.run(go())
    assert unready.status_code == 503
    message = unready.json()["error"]["message"]
    assert "cannot load model" in message and "retrying" in message
    assert "secret" not in message and "fire" not in message  # no internals
    assert ready.status_code == 200 and service.loads["n"] == 3  # two failures, then loaded
    assert not service.workers.load_errors and not service.startup_failed


def test_the_server_gives_up_after_the_load_timeout(paper_profile):
    failed = []
    cfg = ServeConfig(workers=1, time_scale=0.01, load_timeout_s=2.5)
    service = _service(paper_profile, cfg, fail_loads=10**6, on_failed=lambda: failed.append(1))
    app = create_app(service, ServerMetrics(cfg.time_scale))

    async def go():
        async with app.router.lifespan_context(app):
            deadline = time.monotonic() + 10
            while not failed and time.monotonic() < deadline:
                await asyncio.sleep(0.05)

    asyncio.run(go())
    assert failed == [1] and service.startup_failed and not service.ready
    assert service.loads["n"] >= 2  # retried (after 1 s, then 2 s) before giving up


@pytest.mark.slow
def test_cli_exits_3_when_models_never_load(tmp_path):
    from hadis.profiles import load_profile
    from hadis.profiles.io import save_profile

    demo = load_profile("demo-cpu")
    models = tuple(replace(m, source=str(tmp_path / "missing")) for m in demo.models)
    path = tmp_path / "broken.json"
    save_profile(replace(demo, models=models), path)
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "hadis.cli.main", "serve", "--profile", str(path),
         "--executor", "diffusers", "--router", "random", "--discriminator", "none",
         "--load-timeout", "3", "--port", str(free_port())],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr[-2000:]
    assert "did not load within 3s" in done.stderr
    assert time.monotonic() - t0 < 90


def test_cors_preflight_is_answered_without_a_key(paper_profile):
    cfg = ServeConfig(
        workers=1, time_scale=0.01, api_keys=("k",), allowed_origins=("https://app.example",)
    )
    app = build_app(paper_profile, cfg, executor="instant")

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://h") as c:
            pre = await c.options(
                "/v1/images/generations",
                headers={
                    "Origin": "https://app.example",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,content-type",
                },
            )
            other = await c.options(
                "/v1/images/generations",
                headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
            )
            return pre, other

    pre, other = asyncio.run(go())
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in other.headers
