"""How a run is configured: the engine's and the controller's settings, composed once in
`RunConfig`, which the simulator (`SimConfig`) and the server (`ServeConfig`) extend with
their own. Every default is defined here, once; the CLI's options read them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from hadis.core.plan import DEFAULT_BATCH_WAIT, DEFAULT_OVERPROVISION, check_batch_wait
from hadis.errors import HadisError

# Defaults, in the profile's seconds.
SLO_S = 60.0
DROP_FACTOR = 1.5  # drop before execution when the estimated finish is past this x SLO
SWITCH_DELAY_S = 3.0  # a worker loading another model serves nothing meanwhile
REPLAN_PERIOD_S = 50.0
CHECK_S = 10.0  # controller tick at most: early re-plan on backlog
BACKLOG_FRACTION = 0.2  # early re-plan when a queue needs more than this x SLO to drain
EWMA_ALPHA = 0.35  # demand smoothing per tick (time constant ~ 25 s at 10 s ticks)
INITIAL_DEMAND_QPS = 1.0  # demand assumed before anything was measured
MAX_RETRIES = 1  # a query whose batch failed runs again this many times
HOST_CACHE = 1  # models a worker keeps in host memory besides the one on its device
BURST_QUANTILE = 0.9  # with slow switches, plans lean towards this quantile of tick rates
BURST_WINDOW_S = 1200.0  # ... over this much of the recent past (and plans weather its ticks)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    slo_s: float
    drop_factor: float = DROP_FACTOR
    switch_delay_s: float = SWITCH_DELAY_S
    seed: int = 0  # for split (Proteus) routing
    max_retries: int = MAX_RETRIES
    host_cache: int = HOST_CACHE

    def __post_init__(self) -> None:
        if not self.slo_s > 0:
            raise HadisError(f"slo must be > 0 seconds, got {self.slo_s}")
        if not self.drop_factor > 0:
            raise HadisError(f"drop factor must be > 0, got {self.drop_factor}")
        if self.switch_delay_s < 0:
            raise HadisError(f"switch delay must be >= 0 seconds, got {self.switch_delay_s}")
        if self.max_retries < 0:
            raise HadisError(f"max retries must be >= 0, got {self.max_retries}")
        if self.host_cache < 0:
            raise HadisError(f"host cache must be >= 0 models, got {self.host_cache}")


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    period_s: float = REPLAN_PERIOD_S  # re-plan period
    check_s: float = CHECK_S  # how often tick() looks for overload (early re-plan)
    backlog_fraction: float = BACKLOG_FRACTION
    ewma_alpha: float = EWMA_ALPHA
    initial_demand_qps: float = INITIAL_DEMAND_QPS
    overprovision: float = DEFAULT_OVERPROVISION
    batch_wait: float = DEFAULT_BATCH_WAIT  # planned wait for a batch in progress (batches)
    burst_quantile: float = BURST_QUANTILE
    burst_window_s: float = BURST_WINDOW_S

    def __post_init__(self) -> None:
        if not 0 <= self.burst_quantile <= 1:
            raise HadisError(f"burst quantile must be in [0, 1], got {self.burst_quantile}")
        if not self.burst_window_s > 0:
            raise HadisError(f"burst window must be > 0 seconds, got {self.burst_window_s}")
        if not self.period_s > 0:
            raise HadisError(f"re-plan period must be > 0 seconds, got {self.period_s}")
        if not 0 < self.check_s <= self.period_s:
            raise HadisError(f"check interval must be in (0, period], got {self.check_s}")
        if not 0 < self.ewma_alpha <= 1:
            raise HadisError(f"ewma alpha must be in (0, 1], got {self.ewma_alpha}")
        if self.initial_demand_qps < 0:
            raise HadisError(f"initial demand must be >= 0, got {self.initial_demand_qps}")
        check_batch_wait(self.batch_wait)


@dataclass(frozen=True)
class RunConfig:
    """What the simulator and the server share: the SLO, the engine's rules and the control
    loop's. `engine_config()` and `controller_config()` hand each part its settings."""

    slo_s: float = SLO_S
    seed: int = 0
    drop_factor: float = DROP_FACTOR
    switch_delay_s: float = SWITCH_DELAY_S
    replan_period_s: float = REPLAN_PERIOD_S
    # controller tick; None: CHECK_S, or BACKLOG_FRACTION x SLO when that is shorter (a
    # backlog is seen as soon as it could be one). At most the re-plan period.
    check_s: float | None = None
    ewma_alpha: float = EWMA_ALPHA
    overprovision: float = DEFAULT_OVERPROVISION
    batch_wait: float = DEFAULT_BATCH_WAIT
    # demand the first plan assumes; None: the driver's estimate (the simulator: the
    # trace's rate over its first period; the server: INITIAL_DEMAND_QPS)
    initial_demand_qps: float | None = None
    host_cache: int = HOST_CACHE  # models a worker keeps in host memory besides its own
    policy_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.replan_period_s > 0:
            raise HadisError(f"re-plan period must be > 0 seconds, got {self.replan_period_s}")
        self.engine_config()
        self.controller_config(self.initial_demand_qps or 0.0)

    def engine_config(self, **overrides: Any) -> EngineConfig:
        config = EngineConfig(
            self.slo_s,
            self.drop_factor,
            self.switch_delay_s,
            self.seed,
            host_cache=self.host_cache,
        )
        return dataclasses.replace(config, **overrides) if overrides else config

    @property
    def tick_s(self) -> float:
        """How often the controller checks for a backlog: one that needs more than
        BACKLOG_FRACTION x SLO to drain re-plans early, so it is looked for that often
        (with a 5 s SLO every second; a 60 s one keeps CHECK_S). Measured: on the demo
        pool under bursts every policy's violations fell from 0.001-0.15 to 0.0001 or less."""
        if self.check_s is not None:
            return self.check_s
        return min(CHECK_S, BACKLOG_FRACTION * self.slo_s)

    def controller_config(self, initial_demand_qps: float | None = None) -> ControllerConfig:
        """initial_demand_qps: the driver's estimate, used when the run gives none."""
        demand = self.initial_demand_qps
        if demand is None:
            demand = INITIAL_DEMAND_QPS if initial_demand_qps is None else initial_demand_qps
        return ControllerConfig(
            period_s=self.replan_period_s,
            check_s=min(self.tick_s, self.replan_period_s),
            ewma_alpha=self.ewma_alpha,
            initial_demand_qps=demand,
            overprovision=self.overprovision,
            batch_wait=self.batch_wait,
        )
