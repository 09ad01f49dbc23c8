"""Planner inputs and outputs: PlanRequest -> Plan. Pure data, no clock, no I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from hadis.errors import PlanningError
from hadis.profiles import Profile

DEFAULT_OVERPROVISION = 1.05
DEFAULT_QUEUE_FACTOR = 1.2  # Little's-law queueing delay multiplier (research code)
# Share of a batch a query waits for the one in progress before its own starts: 0 is the
# paper's rule (a batch's latency plus the queue), 0.5 the mean wait when it arrives while
# the worker is busy, 1 the worst case (docs/planner.md).
DEFAULT_BATCH_WAIT = 0.5


@dataclass(frozen=True)
class PlanRequest:
    """Everything a planning policy may look at.

    demand_qps: smoothed arrival rate of new queries (queries/s).
    queue: queries waiting per model now; arrival_qps: measured arrivals per model (q/s),
    used for the Little's-law queueing delay Q_m = queue_factor * queue_m / arrival_m
    (arrival_m falls back to demand_qps when not measured).
    previous: the plan in force, for policies that step from it (INFaaS).
    """

    profile: Profile
    gpus: int
    slo_s: float
    demand_qps: float
    queue: Mapping[str, int] = field(default_factory=dict)
    arrival_qps: Mapping[str, float] = field(default_factory=dict)
    overprovision: float = DEFAULT_OVERPROVISION
    queue_factor: float = DEFAULT_QUEUE_FACTOR
    batch_wait: float = DEFAULT_BATCH_WAIT
    previous: Plan | None = None

    def __post_init__(self) -> None:
        validate_request(self)

    @property
    def target_qps(self) -> float:
        """Demand the plan must carry, including the over-provisioning margin."""
        return self.demand_qps * self.overprovision

    @property
    def batch_factor(self) -> float:
        """Batches of latency a stage plans for: its own and the wait for the one in
        progress (batch_wait of one: 0 the paper's rule, 1 the worst case)."""
        return 1.0 + self.batch_wait

    def stage_s(self, batch_s: float, model: str) -> float:
        """Planned latency of one stage: the batch, the wait for the batch in progress and
        the queue."""
        return self.batch_factor * batch_s + self.queue_delay_s(model)

    def queue_delay_s(self, model: str) -> float:
        """Expected wait for the queries already queued at `model`: the queue drained at
        the rate the model serves, estimated as the higher of its capacity in the plan in
        force (`previous`) and its arrival rate (or the demand when none was measured).
        The arrival rate alone (Little's law) is measured under the plan in force, over
        the whole period: after a burst routed to a model its backlog looked many
        seconds long, and the planner dropped a model that drains it in one or two (on
        the demo pool, bursts then went to its smallest model)."""
        queued = self.queue.get(model, 0)
        if queued <= 0:
            return 0.0
        rate = self.arrival_qps.get(model) or self.demand_qps
        if self.previous is not None:
            rate = max(rate, self.previous.capacity_qps.get(model, 0.0))
        if rate <= 0:
            return 0.0
        return self.queue_factor * queued / rate


def carried_demand(capacity_qps: Mapping[str, float], shares: Mapping[str, float]) -> float:
    """Queries/s a set of model capacities carries when each model takes `shares` of the
    demand: the scarcest model's capacity over its share (inf with no share)."""
    return min((capacity_qps.get(m, 0.0) / s for m, s in shares.items() if s > 0), default=math.inf)


def check_batch_wait(batch_wait: float) -> None:
    if not 0 <= batch_wait <= 1:
        raise PlanningError(f"batch wait must be in [0, 1] batches, got {batch_wait}")


def validate_request(req: PlanRequest) -> None:
    if isinstance(req.gpus, bool) or not isinstance(req.gpus, int) or req.gpus < 1:
        raise PlanningError(f"gpus must be a positive integer, got {req.gpus!r}")
    if not math.isfinite(req.demand_qps) or req.demand_qps < 0:
        raise PlanningError(f"demand must be a finite number >= 0 queries/s, got {req.demand_qps}")
    if not math.isfinite(req.slo_s) or req.slo_s <= 0:
        raise PlanningError(f"slo must be a positive number of seconds, got {req.slo_s}")
    if req.overprovision < 1:
        raise PlanningError(f"overprovision must be >= 1, got {req.overprovision}")
    check_batch_wait(req.batch_wait)
    fastest = min(req.profile.models, key=lambda m: m.latency_s[1])
    if req.slo_s < fastest.latency_s[1]:
        raise PlanningError(
            f"slo {req.slo_s:g}s is below every model's latency "
            f"(fastest: {fastest.name} at {fastest.latency_s[1]:g}s per image)"
        )
    for name in (*req.queue, *req.arrival_qps):
        req.profile.model(name)


@dataclass(frozen=True)
class Plan:
    """A serving configuration for the data plane.

    Routing: when `split` is None, queries follow the cascade: the router sends the top-r
    fraction to `heavy`, the rest run on `light`, and the discriminator escalates the
    bottom-d fraction of light images to `heavy` (heavy None means light only, r = d = 0).
    When `split` is set (Proteus), each query goes to one model with those probabilities.
    """

    policy: str
    light: str
    heavy: str | None
    r: float
    d: float
    gpus: Mapping[str, int]
    batch: Mapping[str, int]
    quality: float
    feasible: bool
    demand_qps: float
    load_qps: Mapping[str, float]
    capacity_qps: Mapping[str, float]
    path_latency_s: Mapping[str, float]
    shortfall_qps: float = 0.0
    solve_ms: float = 0.0
    split: Mapping[str, float] | None = None
    admission_factor: float | None = None  # drop if est. finish > factor x SLO; None: default
    note: str = ""

    @property
    def pair(self) -> tuple[str, ...]:
        return (self.light,) if self.heavy is None else (self.light, self.heavy)

    @property
    def f(self) -> float:
        """Heavy fraction r + (1 - r) d."""
        return self.r + (1 - self.r) * self.d

    @property
    def carried_qps(self) -> float:
        """The demand the plan's capacity carries (the scarcest model, at its share)."""
        if self.demand_qps <= 0:
            return math.inf
        shares = {m: load / self.demand_qps for m, load in self.load_qps.items()}
        return carried_demand(self.capacity_qps, shares)

    @property
    def headroom(self) -> dict[str, float]:
        """Capacity over planned load, minus one, per model with load (inf if no load)."""
        return {
            m: (cap / self.load_qps[m] - 1) if self.load_qps.get(m, 0) > 0 else math.inf
            for m, cap in self.capacity_qps.items()
        }

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["pair"] = list(self.pair)
        out["f"] = self.f
        out["headroom"] = {m: (h if math.isfinite(h) else None) for m, h in self.headroom.items()}
        return out
