"""Replay a trace against a running server over HTTP; report what `hadis simulate` reports.

Arrival times are multiplied by the server's time scale; each query becomes one request
(n = 1) for its reference prompt, with the image seed the simulator would draw for it.
A request counts as late when its latency exceeds SLO x time scale, and as dropped when
it did not get an image (429, 503, 504, errors).
Quality is computed from the path and pair the server reports for each image.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from hadis.engine import DROPPED, SERVED, MetricsRecorder, QualityTable, Query, summarize
from hadis.profiles import Profile
from hadis.routing.reference import reference_prompts
from hadis.sim.simulator import trace_image_seeds
from hadis.sim.trace import Trace


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
) -> dict[str, Any]:
    prompts = reference_prompts()
    image_seeds = trace_image_seeds(trace, seed)  # the simulator's, for parity
    recorder = MetricsRecorder()
    statuses: dict[int, int] = {}
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
                q.status, q.drop_reason = DROPPED, f"http {status}"
            recorder.on_query_done(q)
            if progress is not None:
                progress(len(recorder.queries) / len(trace))

        await asyncio.gather(*(one(i) for i in range(len(trace))))
    summary = summarize(
        recorder,
        QualityTable(profile),
        slo_s=slo_s,
        gpus=gpus,
        window_s=window_s,
        duration_s=max(trace.duration_s, 1e-9),
    )
    summary["http_status"] = {str(k): v for k, v in sorted(statuses.items())}
    return summary
