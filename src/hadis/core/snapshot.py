"""A read-only copy of the engine's state: what admission, the HTTP API, the dashboard and
the metrics look at, instead of the engine's own structures."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from hadis.core.plan import Plan

# A worker's state: busy, idle, switching (loading a model), restarting (a replacement on
# its way: a live driver's), failed (out of service: lost to the engine).
WORKER_STATES = ("busy", "idle", "switching", "restarting", "failed")


@dataclass(frozen=True, slots=True)
class WorkerView:
    id: int
    assigned: str | None  # the model the plan gives it
    loaded: str | None  # the model on the device
    loading: str | None  # the model being loaded
    busy: bool
    switching: bool
    alive: bool
    running: int  # queries in its running batch
    started_s: float  # when that batch started (engine time)
    state: str = ""  # one of WORKER_STATES; "" : the engine's own (see `status`)
    placement: str | None = None  # where it runs (e.g. a Ray node), when the driver knows

    @property
    def status(self) -> str:
        """The driver's state when it set one, else the engine's."""
        if self.state:
            return self.state
        if not self.alive:
            return "failed"
        return "busy" if self.busy else "switching" if self.switching else "idle"


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    now_s: float
    plan: Plan | None
    queues: Mapping[str, int]  # queued queries per model (every model of the profile)
    free: Mapping[str, int]  # idle workers holding each model
    workers: tuple[WorkerView, ...] = field(default_factory=tuple)

    @property
    def queued(self) -> int:
        return sum(self.queues.values())

    def wait_s(self, model: str) -> float:
        """Engine seconds before a query joining `model`'s queue now could start: 0 with
        a free worker of it and nothing queued, else its queue drained at the plan's
        capacity (inf when the plan gives the model none)."""
        queue = self.queues.get(model, 0)
        if self.free.get(model, 0) and queue == 0:
            return 0.0
        cap = self.plan.capacity_qps.get(model, 0.0) if self.plan is not None else 0.0
        return math.inf if cap <= 0 else queue / cap

    def worker_states(self) -> dict[str, int]:
        """How many workers are in each state."""
        out = dict.fromkeys(WORKER_STATES, 0)
        for w in self.workers:
            out[w.status] += 1
        return out
