"""Admission control, as functions of the engine's snapshot: a request is turned away
(HTTP 429) when the queue is full, or when the model its queries were routed to cannot
start them within the SLO. A full heavy queue does not block what the light model takes,
and a free worker always takes work, whatever the plan."""

from __future__ import annotations

from collections.abc import Iterable

from hadis.core.snapshot import EngineSnapshot
from hadis.errors import HadisError
from hadis.profiles import Profile


class Rejected(HadisError):
    """Admission control refused a request (HTTP 429); retry_after_s in engine seconds."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def check_queue(snapshot: EngineSnapshot, n: int, max_queue: int) -> Rejected | None:
    """n more queries would overflow the queue: the rejection (retry after the shortest
    wait of a model the plan runs)."""
    queued = snapshot.queued
    if queued + n <= max_queue:
        return None
    plan = snapshot.plan
    waits = [snapshot.wait_s(m) for m, g in plan.gpus.items() if g > 0] if plan else []
    return Rejected(f"queue full ({queued} queued)", min(waits, default=1.0))


def check_paths(
    snapshot: EngineSnapshot, models: Iterable[str], profile: Profile, slo_s: float
) -> Rejected | None:
    """The first routed model that cannot start a query within the SLO: the rejection
    (retry after its queue's wait)."""
    for model in models:
        wait = snapshot.wait_s(model)
        if wait + profile.model(model).batch_latency_s(1) > slo_s:
            return Rejected(
                f"the SLO of {slo_s:g}s cannot be met: {model}'s queue needs {wait:.1f}s to drain",
                wait,
            )
    return None
