"""Replay a trace against a running server over HTTP; report what `hadis simulate` reports.

Arrival times are multiplied by the server's time scale; each query becomes one request
(n = 1) for its reference prompt, with the image seed the simulator would draw for it.
A request counts as late when its latency exceeds SLO x time scale, and as dropped when
it did not get an image (429, 503, 504, errors).
Quality is computed from the path and pair the server reports for each image.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import httpx

from hadis.core import RunSummary
from hadis.engine import (
    DROPPED,
    SERVED,
    DropReason,
    MetricsRecorder,
    QualityTable,
    Query,
    summarize,
)
from hadis.errors import HadisError
from hadis.profiles import Profile
from hadis.routing.reference import reference_prompts
from hadis.sim.simulator import trace_image_seeds
from hadis.sim.trace import Trace


class Replay:
    """The records of one replay: kept by the caller, so that a replay stopped half-way
    (Ctrl-C) can still be summarised."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.recorder = MetricsRecorder()
        self.statuses: dict[int, int] = {}

    @property
    def done(self) -> int:
        return len(self.recorder.queries)

    def summary(
        self, profile: Profile, *, slo_s: float, gpus: int, window_s: float = 50.0
    ) -> RunSummary:
        """What `hadis simulate` reports, over the requests that ended so far."""
        queries = self.recorder.queries
        span = (  # a replay stopped half-way covers up to its last ended request
            self.trace.duration_s
            if self.done == len(self.trace)
            else max((q.arrival_s for q in queries), default=0.0)
        )
        summary = summarize(
            self.recorder,
            QualityTable(profile),
            slo_s=slo_s,
            gpus=gpus,
            window_s=window_s,
            duration_s=max(span, 1e-9),
        )
        return dataclasses.replace(
            summary, http_status={str(k): v for k, v in sorted(self.statuses.items())}
        )


async def replay(
    base_url: str,
    trace: Trace,
    profile: Profile,
    *,
    slo_s: float,
    gpus: int,
    time_scale: float = 1.0,
    window_s: float = 50.0,
    timeout_s: float | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: Callable[[float], None] | None = None,
    seed: int = 0,
) -> RunSummary:
    state = Replay(trace)
    await run_replay(
        state,
        base_url,
        slo_s=slo_s,
        time_scale=time_scale,
        timeout_s=timeout_s,
        transport=transport,
        progress=progress,
        seed=seed,
    )
    return state.summary(profile, slo_s=slo_s, gpus=gpus, window_s=window_s)


async def run_replay(
    state: Replay,
    base_url: str,
    *,
    slo_s: float,
    time_scale: float = 1.0,
    timeout_s: float | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: Callable[[float], None] | None = None,
    seed: int = 0,
) -> None:
    trace, recorder, statuses = state.trace, state.recorder, state.statuses
    prompts = reference_prompts()
    image_seeds = trace_image_seeds(trace, seed)  # the simulator's, for parity
    limit = timeout_s or 3 * slo_s * time_scale + 10
    async with httpx.AsyncClient(
        base_url=base_url,
        timeout=limit,
        transport=transport,
        limits=httpx.Limits(max_connections=512),
    ) as client:
        start = time.monotonic()

        async def one(i: int) -> None:
            delay = trace.arrival_s[i] * time_scale - (time.monotonic() - start)
            if delay > 0:
                await asyncio.sleep(delay)
            pid = int(trace.prompt_id[i])
            text = prompts[pid] if pid >= 0 else (trace.prompt[i] if trace.prompt else "")
            sent = time.monotonic()
            q = Query(i, (sent - start) / time_scale, pid)
            try:
                r = await client.post(
                    "/v1/images/generations", json={"prompt": text, "n": 1, "seed": image_seeds[i]}
                )
                status = r.status_code
                body = r.json() if status == 200 else None
            except httpx.HTTPError:
                status, body = 0, None
            q.finish_s = (time.monotonic() - start) / time_scale
            statuses[status] = statuses.get(status, 0) + 1
            if body:
                info = body["data"][0]["hadis"]
                q.status, q.path, q.pair = SERVED, info["path"], tuple(info["pair"])
            else:
                q.status, q.drop_reason = DROPPED, DropReason.HTTP_ERROR
                q.drop_detail = f"http {status}"
            recorder.on_query_done(q)
            if progress is not None:
                progress(len(recorder.queries) / len(trace))

        await asyncio.gather(*(one(i) for i in range(len(trace))))


async def server_info(base_url: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """The server's /v1/plan (profile, SLO, time scale, workers); HadisError if the URL does
    not answer like a hadis server."""
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=timeout_s) as client:
            r = await client.get("/v1/plan")
    except httpx.HTTPError as e:
        raise HadisError(f"cannot reach {base_url}: {e or type(e).__name__}") from None
    if r.status_code != 200:
        raise HadisError(f"{base_url}/v1/plan answered {r.status_code}: is it a hadis server?")
    try:
        info = r.json()
        _ = (info["profile"], info["slo_s"], info["time_scale"], info["workers"])
    except (ValueError, KeyError, TypeError):
        raise HadisError(f"{base_url}/v1/plan is not a hadis plan: is it a hadis server?") from None
    return info
