"""Ray in tests: a local instance or a multi-node cluster on this machine, small CPU
shares per worker (2 cores), no auth, and a live service driven in-process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable

import httpx

os.environ.setdefault("RAY_AUTH_MODE", "disabled")


@contextlib.asynccontextmanager
async def live(app, ready_timeout_s: float = 120.0) -> AsyncIterator[httpx.AsyncClient]:
    """The app's service started (lifespan) and ready; a client bound to it in-process."""
    async with app.router.lifespan_context(app):
        service = app.state.service
        deadline = time.monotonic() + ready_timeout_s
        while not service.ready:
            if service.workers.load_errors:
                raise RuntimeError(service.workers.load_errors)
            if time.monotonic() > deadline:
                raise TimeoutError("the service did not become ready")
            await asyncio.sleep(0.05)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hadis") as client:
            yield client


async def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def generate(client: httpx.AsyncClient, prompt: str, **body) -> asyncio.Task:
    return asyncio.ensure_future(
        client.post("/v1/images/generations", json={"prompt": prompt, **body}, timeout=120)
    )


def explicit_end(r: httpx.Response) -> bool:
    """An image, or an OpenAI-style error with a message: never a hang or a bare 500."""
    if r.status_code == 200:
        return bool(r.json()["data"][0]["b64_json"])
    return r.status_code in (429, 503, 504) and bool(r.json()["error"]["message"])
