"""Synthetic model pools from a few documented formulas, for scale and robustness checks.

`synthetic_pool(n_models)`: model i (0 = fastest) takes L_i seconds per image at batch 1,
log-spaced from `fastest_s` to `slowest_s`, with measured-looking batch latencies
L_i(b) = L_i * (0.35 + 0.65 b) (batching amortises ~35% of the per-batch cost), and has
FID q_i falling linearly from `worst_fid` to `best_fid` (plus seeded noise of +-0.3).
Pairs (i, j) with 1 <= j - i <= `pair_span` get rows on an (r, d) grid with the heavy
fraction f = r + (1 - r) d and quality q_i + (q_j - q_i) * f ** 0.8 + noise: the cascade
earns a little more than a linear mix, as the paper's measured rows do. Row latency is the
expected batch-1 seconds per query, (1 - r) L_i + f L_j. `r_grid=(0.0,)` gives a
discriminator-only table (no router rows). Same seed, same pool.
"""

from __future__ import annotations

import itertools

import numpy as np

from hadis.profiles.model import BATCH_SIZES, ConfigRow, Direction, Metric, ModelVariant, Profile


def synthetic_pool(
    n_models: int = 24,
    *,
    pair_span: int = 3,
    grid: tuple[float, ...] = tuple(np.round(np.linspace(0.0, 1.0, 11), 2)),
    r_grid: tuple[float, ...] | None = None,
    fastest_s: float = 0.5,
    slowest_s: float = 20.0,
    worst_fid: float = 30.0,
    best_fid: float = 18.0,
    seed: int = 0,
    name: str | None = None,
) -> Profile:
    if n_models < 2:
        raise ValueError(f"a pool needs at least 2 models, got {n_models}")
    rng = np.random.default_rng(seed)
    lat = np.geomspace(fastest_s, slowest_s, n_models)
    fid = np.linspace(worst_fid, best_fid, n_models) + rng.uniform(-0.3, 0.3, n_models)
    models = tuple(
        ModelVariant(
            name=f"s{i:02d}",
            source=f"synthetic/s{i:02d}",
            steps=1,
            guidance=0.0,
            resolution=(1024, 1024),
            quality_alone=round(float(fid[i]), 3),
            latency_s={b: round(float(lat[i] * (0.35 + 0.65 * b)), 4) for b in BATCH_SIZES},
        )
        for i in range(n_models)
    )
    rows = []
    for i, j in itertools.combinations(range(n_models), 2):
        if j - i > pair_span:
            continue
        for r, d in itertools.product(grid if r_grid is None else r_grid, grid):
            f = r + (1 - r) * d
            q = fid[i] + (fid[j] - fid[i]) * f**0.8 + rng.uniform(-0.1, 0.1)
            rows.append(
                ConfigRow(
                    light=models[i].name,
                    heavy=models[j].name,
                    r=float(r),
                    d=float(d),
                    f=round(float(f), 6),
                    quality=round(float(q), 3),
                    latency_s=round(float((1 - r) * lat[i] + f * lat[j]), 4),
                )
            )
    return Profile(
        name=name or f"synthetic-{n_models}",
        gpu_type="synthetic",
        metric=Metric("FID", Direction.LOWER),
        models=models,
        configs=tuple(rows),
        description=__doc__.split("\n\n")[1].replace("\n", " "),
        provenance="hadis.profiles.synthetic.synthetic_pool (formulas, no measurement)",
    )
