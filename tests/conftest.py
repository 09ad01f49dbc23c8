"""Shared fixtures: the bundled paper profile and small synthetic profiles."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import pytest

from hadis.profiles import ConfigRow, Direction, Metric, ModelVariant, Profile, load_profile


@pytest.fixture(scope="session")
def paper_profile() -> Profile:
    return load_profile("hadis-l40s")


@pytest.fixture(scope="session")
def demo_profile() -> Profile:
    return load_profile("demo-cpu")


def make_profile(
    latencies: Sequence[float | Mapping[int, float]],
    qualities: list[float],
    row_quality,
    grid: tuple[float, ...] = (0.0, 0.5, 1.0),
    max_batch: int | Sequence[int] = 32,
) -> Profile:
    """A synthetic pool: model i has batch-1 latency latencies[i] (or the measured
    {batch: seconds} given there); rows for every pair; max_batch per pool or per model."""
    measured = [lat if isinstance(lat, Mapping) else {1: lat} for lat in latencies]
    batch_caps = [max_batch] * len(measured) if isinstance(max_batch, int) else list(max_batch)
    models = tuple(
        ModelVariant(
            name=f"m{i}",
            source=f"test/m{i}",
            steps=1,
            guidance=0.0,
            resolution=(8, 8),
            quality_alone=q,
            latency_s=dict(lat),
            max_batch=cap,
        )
        for i, (lat, q, cap) in enumerate(zip(measured, qualities, batch_caps, strict=True))
    )
    latencies = [lat[1] for lat in measured]
    rows = []
    for i, j in itertools.combinations(range(len(models)), 2):
        for r, d in itertools.product(grid, grid):
            f = r + (1 - r) * d
            rows.append(
                ConfigRow(
                    light=f"m{i}",
                    heavy=f"m{j}",
                    r=r,
                    d=d,
                    f=f,
                    quality=row_quality(i, j, r, d),
                    latency_s=(1 - r) * latencies[i] + f * latencies[j],
                )
            )
    return Profile(
        name="synthetic",
        gpu_type="test",
        metric=Metric("FID", Direction.LOWER),
        models=models,
        configs=tuple(rows),
    )


@pytest.fixture
def small_profile() -> Profile:
    # quality interpolates linearly in the heavy fraction
    q = [30.0, 25.0, 20.0]
    return make_profile(
        [0.5, 2.0, 10.0], q, lambda i, j, r, d: q[i] + (q[j] - q[i]) * (r + (1 - r) * d)
    )
