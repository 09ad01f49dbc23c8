"""What a run reports: the simulator, the oracle reference and `hadis load` (a replay
against a live server) all summarise into these."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# RunSummary fields the oracle's fluid reference leaves out (it runs no queries)
_NOT_FLUID = (
    "paths",
    "latency_p50_s",
    "latency_p99_s",
    "utilisation",
    "plan_changes",
    "planner_failures",
    "early_replans",
)


@dataclass(frozen=True, slots=True)
class WindowSummary:
    """One metrics window, by arrival time."""

    start_s: float
    queries: int
    demand_qps: float
    served: float  # a count (fractional in the oracle's fluid reference)
    dropped: float
    late: int
    violation_ratio: float
    quality: float | None  # served quality (None: nothing served)
    utilisation: float | None  # busy share of the GPUs (None: not modelled)
    gpus: dict[str, int]  # of the plan in force at the window's end
    config: str  # that plan, in words


@dataclass(frozen=True)
class RunSummary:
    policy: str
    queries: int = 0
    served: int = 0
    dropped: int = 0
    late: int = 0  # served after the SLO
    violation_ratio: float = 0.0  # (late + dropped) / queries
    quality: float | None = None  # served quality (the profile's metric)
    paths: dict[str, int] = field(default_factory=dict)  # served queries per path
    latency_p50_s: float | None = None
    latency_p99_s: float | None = None
    utilisation: float | None = None
    plan_changes: int = 0
    planner_failures: int = 0
    early_replans: int = 0
    windows: list[WindowSummary] = field(default_factory=list)
    http_status: dict[str, int] | None = None  # a replay against a server: answers by status
    fluid_reference: bool = False  # the oracle: a fluid estimate, not a simulation
    error: str | None = None  # the policy could not run (nothing else is set)

    @classmethod
    def failed(cls, policy: str, error: str) -> RunSummary:
        return cls(policy, error=error)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (`--json`, summary.json): optional parts only when set."""
        if self.error is not None:
            return {"policy": self.policy, "error": self.error}
        out = dataclasses.asdict(self)
        del out["error"]
        if self.http_status is None:
            del out["http_status"]
        if not self.fluid_reference:
            del out["fluid_reference"]
        else:  # what a fluid estimate does not model
            for key in _NOT_FLUID:
                del out[key]
            for window in out["windows"]:
                del window["utilisation"]
        return out
