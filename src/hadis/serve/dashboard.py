"""The live dashboard's data: one sampler per server, whatever the number of viewers.

Every `interval_s` (real seconds) the feed refreshes the gauges that are read on demand
(queues, worker states, the demand estimate), samples the metric registry once, evaluates
the panels (serve/panels.py: the Grafana board's queries) and keeps the last
`history_s` of points; viewers get the history once (`state`) and then one small event per
tick (`events`, server-sent events). Plan changes with their reason form the timeline;
the gallery of recent requests is off unless `gallery` > 0 (prompts are user data).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from hadis.planner import Plan
from hadis.serve import panels
from hadis.serve.listener import ServiceListener
from hadis.web import jsonable

if TYPE_CHECKING:
    from hadis.serve.prom import ServerMetrics
    from hadis.serve.protocol import ImageService
    from hadis.serve.service import ServiceSnapshot

THUMBNAIL_PX = 128
TIMELINE_LENGTH = 100


def _finite(v: float) -> float | None:
    return round(v, 6) if math.isfinite(v) else None


class DashboardFeed(ServiceListener):
    def __init__(
        self,
        service: ImageService,
        metrics: ServerMetrics,
        *,
        gallery: int = 0,
        interval_s: float = 1.0,
        history_s: float = 600.0,
    ) -> None:
        self.service = service
        self.metrics = metrics
        self.interval_s = interval_s
        self.points: deque[dict[str, Any]] = deque(maxlen=max(2, int(history_s / interval_s)))
        self._samples: deque[tuple[float, panels.Samples]] = deque()
        self.timeline: deque[dict[str, Any]] = deque(maxlen=TIMELINE_LENGTH)
        self.gallery: deque[dict[str, Any]] | None = deque(maxlen=gallery) if gallery > 0 else None
        self.seq = 0
        self._tick = asyncio.Condition()
        self._event = ""  # the newest tick's server-sent event
        self._task: asyncio.Task | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            snap = self.service.snapshot()
            point = self.sample_once(time.time(), snap)
            # one event per tick, serialised once for every viewer
            payload = {"seq": self.seq, "point": point, **self.live(snap)}
            self._event = f"data: {json.dumps(jsonable(payload), separators=(',', ':'))}\n\n"
            async with self._tick:
                self._tick.notify_all()
            await asyncio.sleep(self.interval_s)

    # ------------------------------------------------------------------ sampling
    def sample_once(self, now: float, snap: ServiceSnapshot | None = None) -> dict[str, Any]:
        """Refresh the on-demand gauges, sample the registry, evaluate every panel."""
        metrics = self.metrics
        metrics.refresh_from(snap or self.service.snapshot())
        samples = panels.sample(metrics.registry)
        self._samples.append((now, samples))
        while len(self._samples) > 2 and self._samples[1][0] <= now - panels.WINDOW_S:
            self._samples.popleft()
        then_t, then = self._samples[0]
        values = {
            p.id: {k: _finite(v) for k, v in p.query.evaluate(samples, then, now - then_t).items()}
            for p in panels.PANELS
        }
        point = {"t": round(now, 3), "values": values}
        self.points.append(point)
        self.seq += 1
        return point

    # ------------------------------------------------------------------ events in
    def on_plan_change(self, now: float, plan: Plan, reason: str) -> None:
        self.timeline.append(
            {
                "t": round(time.time(), 3),
                "engine_s": round(now, 3),
                "reason": reason,
                **_plan_view(plan),
                "demand_qps": _finite(plan.demand_qps),
            }
        )

    def record(self, prompt: str, image: bytes | None, meta: dict[str, Any]) -> None:
        """A served request for the gallery (a no-op when the gallery is off)."""
        if self.gallery is None:
            return
        self.gallery.append(
            {"t": round(time.time(), 3), "prompt": prompt, "thumbnail": _thumbnail(image), **meta}
        )

    # ------------------------------------------------------------------ views out
    def live(self, snap: ServiceSnapshot | None = None) -> dict[str, Any]:
        """What changes every tick besides the panel values."""
        snap = snap or self.service.snapshot()
        plan = snap.plan
        return {
            "ready": snap.ready,
            "plan": None if plan is None else _plan_view(plan),
            "workers": [
                {
                    "id": w.id,
                    "model": w.loading or w.loaded,
                    "state": w.status,
                    "placement": w.placement,
                }
                for w in snap.engine.workers
            ],
            "queues": {m: n for m, n in snap.engine.queues.items() if n},
            "timeline": list(self.timeline)[-20:],
        }

    def state(self) -> dict[str, Any]:
        """Everything a new viewer needs: panel definitions, history, the live view."""
        cfg = self.service.config
        return {
            "profile": self.service.profile.name,
            "metric": self.service.profile.metric.name,
            "policy": cfg.policy,
            "slo_s": cfg.slo_s,
            "time_scale": cfg.time_scale,
            "interval_s": self.interval_s,
            "gallery": self.gallery is not None,
            "outcome_status": panels.OUTCOME_STATUS,
            "panels": [
                {
                    "id": p.id,
                    "title": p.title,
                    "unit": p.unit,
                    "stacked": p.stacked,
                    "promql": p.query.promql(),
                }
                for p in panels.PANELS
            ],
            "points": list(self.points),
            "seq": self.seq,
            **self.live(),
        }

    async def events(self) -> AsyncIterator[str]:
        """Server-sent events: one `data:` line per tick with the newest point."""
        yield "retry: 2000\n\n"
        seq = self.seq
        while True:
            last = seq
            async with self._tick:
                await self._tick.wait_for(lambda: self.seq != last)  # noqa: B023
            seq = self.seq
            yield self._event


def _plan_view(plan: Plan) -> dict[str, Any]:
    """What the page shows of a plan."""
    return {
        "policy": plan.policy,
        "pair": list(plan.pair),
        "r": plan.r,
        "d": plan.d,
        "split": dict(plan.split) if plan.split else None,
        "gpus": dict(plan.gpus),
        "batch": dict(plan.batch),
        "quality": _finite(plan.quality),
        "feasible": plan.feasible,
    }


def _thumbnail(image: bytes | None) -> str | None:
    if not image:
        return None
    from PIL import Image

    img = Image.open(io.BytesIO(image))
    img.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()
