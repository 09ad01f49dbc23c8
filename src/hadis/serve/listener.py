"""What the live service tells its listeners (metrics, the dashboard): engine events plus
the driver's own (arrivals, model loads, plan changes with their reason). Every hook is a
no-op here, so a listener overrides only what it needs; all run on the event loop."""

from __future__ import annotations

from hadis.engine import NullListener
from hadis.planner import Plan


class ServiceListener(NullListener):
    def on_arrival(self, now: float, n: int) -> None:
        """n queries were accepted at engine time `now`."""

    def on_switch(self, worker: int, model: str, seconds: float, found: str = "disk") -> None:
        """A worker finished loading `model` (real seconds; NaN when unknown) from where
        it found its weights (core/residency.py `Found`: active, device, host or disk)."""

    def on_plan_change(self, now: float, plan: Plan, reason: str) -> None:
        """The plan in force changed (pair, fractions, GPUs or batch sizes): start, period
        (the re-plan period), backlog (an early re-plan) or workers (one lost or back)."""
