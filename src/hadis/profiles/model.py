"""Typed, immutable model-pool data: variants, configuration rows and the profile."""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

BATCH_SIZES: tuple[int, ...] = (1, 2, 4, 8, 16, 32)


class Direction(StrEnum):
    """Whether a larger quality number is better (e.g. CLIP score) or worse (e.g. FID)."""

    LOWER = "lower"
    HIGHER = "higher"


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    direction: Direction

    def better(self, a: float, b: float) -> bool:
        """True when quality `a` is strictly better than `b`."""
        return a < b if self.direction is Direction.LOWER else a > b

    def cost(self, q: float) -> float:
        """A number to minimise: the quality itself for lower-better metrics, else -q."""
        return q if self.direction is Direction.LOWER else -q


@dataclass(frozen=True, slots=True)
class BatchRule:
    """How latency grows with batch size when a batch size was not measured.

    L(b) = factor * b * L(1) for b > 1 (the research code's assumption, factor 0.9), used
    beyond the largest measured batch size (between measured sizes: interpolation).
    """

    factor: float = 0.9
    note: str = ""  # where the factor comes from (kept in the profile file)


@dataclass(frozen=True)
class ModelVariant:
    """One servable model variant and its cost on the profile's GPU type."""

    name: str
    # What serving needs (None in a simulation-only profile).
    source: str | None  # diffusers model id or local path
    steps: int | None
    guidance: float | None
    resolution: tuple[int, int] | None
    quality_alone: float
    latency_s: Mapping[int, float]  # batch size -> seconds per batch (measured)
    max_batch: int = 32
    batch_rule: BatchRule = field(default_factory=BatchRule)
    extra: Mapping[str, object] = field(default_factory=dict)
    # Seconds a worker takes to switch to this model (measured by the profiler): from disk,
    # and from host memory when the worker kept it there. None: not measured (profiles
    # from before; a run then charges its --switch-delay).
    load_s: float | None = None
    reload_s: float | None = None
    # Device memory (GiB) the model's weights take once loaded (measured by the profiler).
    # None: not measured; the model then never shares a device with another.
    memory_gib: float | None = None

    @property
    def weights(self) -> str:
        """What a worker must hold to serve this variant: its source (its name when it has
        none). Variants of the same weights (other steps or guidance) switch for free."""
        return self.source or self.name

    def switch_s(self, in_host_memory: bool, default: float) -> float:
        """Expected seconds to switch a worker to this model."""
        if in_host_memory and self.reload_s is not None:
            return self.reload_s
        return self.load_s if self.load_s is not None else default

    def batch_latency_s(self, batch: int) -> float:
        """Seconds to generate one batch of `batch` images.

        Measured sizes as measured; a size between two measured ones is interpolated
        linearly (so it is never more than the next measured size); beyond the largest
        measured size the batch rule extrapolates, never below that size's latency. The
        planner, the engine's batching and its drop estimate all read this function."""
        measured = self.latency_s.get(batch)
        if measured is not None:
            return measured
        if batch < 1:
            raise ValueError(f"batch size must be >= 1, got {batch}")
        sizes = self._measured_sizes
        i = bisect.bisect_left(sizes, batch)
        if i < len(sizes):  # between sizes[i - 1] and sizes[i] (sizes[0] == 1 < batch)
            lo, hi = sizes[i - 1], sizes[i]
            t = (batch - lo) / (hi - lo)
            return self.latency_s[lo] + t * (self.latency_s[hi] - self.latency_s[lo])
        largest = self.latency_s[sizes[-1]]
        return max(largest, self.batch_rule.factor * batch * self.latency_s[1])

    @cached_property
    def _measured_sizes(self) -> tuple[int, ...]:
        return tuple(sorted(self.latency_s))

    @cached_property
    def latency_table(self) -> tuple[float, ...]:
        """Seconds per batch indexed by batch size 0..max_batch (0 s for an empty batch):
        looked up, never recomputed, on the engine's hot path."""
        return (0.0, *(self.batch_latency_s(b) for b in range(1, self.max_batch + 1)))

    @property
    def batch_options(self) -> tuple[int, ...]:
        """Batch sizes the planner may choose for this variant."""
        return tuple(b for b in BATCH_SIZES if b <= self.max_batch)

    def capacity_qps(self, batch: int) -> float:
        """Images per second one GPU sustains at this batch size."""
        return batch / self.batch_latency_s(batch)


@dataclass(frozen=True, slots=True)
class ConfigRow:
    """One measured configuration of a (light, heavy) pair.

    r: fraction of all queries the router sends straight to heavy.
    d: fraction of light outputs the discriminator escalates.
    f: heavy fraction r + (1 - r) d.  latency_s: expected per-query seconds at batch 1.
    """

    light: str
    heavy: str
    r: float
    d: float
    f: float
    quality: float
    latency_s: float

    @property
    def pair(self) -> tuple[str, str]:
        return (self.light, self.heavy)

    @property
    def light_share(self) -> float:
        """Fraction of demand that loads the light model (bypassed queries do not)."""
        return 1.0 - self.r

    @property
    def escalates(self) -> bool:
        """Whether some queries take the slow path light -> heavy."""
        return (1.0 - self.r) * self.d > 1e-12


@dataclass(frozen=True, slots=True)
class ServingDefaults:
    """What `hadis serve` uses for this pool unless told otherwise (each optional)."""

    executor: str | None = None
    router: str | None = None
    discriminator: str | None = None
    workers: int | None = None
    slo_s: float | None = None


@dataclass(frozen=True)
class Profile:
    """A model pool profile: variants, the configuration table and the quality metric."""

    name: str
    gpu_type: str
    metric: Metric
    models: tuple[ModelVariant, ...]
    configs: tuple[ConfigRow, ...]
    description: str = ""
    provenance: str = ""
    serving: ServingDefaults = ServingDefaults()
    # Device memory (GiB) a worker may fill with models' weights: the GPU's memory less
    # what the largest batch needs to run. A worker keeps models it moved off on its device
    # while their `memory_gib` fits (core/residency.py). None: one model per device.
    device_memory_gib: float | None = None

    @cached_property
    def model_by_name(self) -> dict[str, ModelVariant]:
        return {m.name: m for m in self.models}

    def model(self, name: str) -> ModelVariant:
        try:
            return self.model_by_name[name]
        except KeyError:
            valid = ", ".join(self.model_by_name)
            raise KeyError(
                f"unknown model {name!r} in profile {self.name!r}; valid: {valid}"
            ) from None

    @cached_property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """Pairs in table order, each once."""
        return tuple(dict.fromkeys(c.pair for c in self.configs))

    def adjacent_pairs(self) -> tuple[tuple[str, str], ...]:
        """Pairs of consecutive models when ordered by batch-1 latency (the paper's choice)."""
        order = sorted(self.models, key=lambda m: m.latency_s[1])
        return tuple((a.name, b.name) for a, b in zip(order, order[1:], strict=False))
