"""Quality of what was actually served, from the profile's configuration table.

Queries served under a pair (light, heavy) are grouped; the group's realised router ratio
r = direct / all and discriminator ratio d = escalated / (light + escalated) are looked up
in the pair's (r, d) grid by bilinear interpolation (linear along the one axis a
single-r or single-d table has; nearest row when the pair's rows do not form a full grid).
A random split between the two models of a pair (Proteus) is scored as that pair's
router-only rows (d = 0) at r = the heavy model's share, when the table has them (the
paper's router is close to random); a split over other models gets the linear mix of
their own qualities. A single model's queries get the model's own quality. Groups from
several pairs (a plan change inside a window, or a split plan) are averaged weighted by
their query counts.
"""

from __future__ import annotations

import numpy as np

from hadis.profiles import Profile


class QualityTable:
    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self._grids: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._rows: dict[tuple[str, str], np.ndarray] = {}
        for pair in profile.pairs:
            rows = [c for c in profile.configs if c.pair == pair]
            rs = np.unique([c.r for c in rows])
            ds = np.unique([c.d for c in rows])
            self._rows[pair] = np.array([(c.r, c.d, c.quality) for c in rows])
            if len(rows) == len(rs) * len(ds):
                grid = np.full((len(rs), len(ds)), np.nan)
                for c in rows:
                    grid[np.searchsorted(rs, c.r), np.searchsorted(ds, c.d)] = c.quality
                if not np.isnan(grid).any():
                    self._grids[pair] = (rs, ds, grid)

    def pair_quality(self, pair: tuple[str, str], r: float, d: float) -> float:
        """Table quality of `pair` at router ratio r and discriminator ratio d."""
        grid = self._grids.get(pair)
        if grid is None:
            rows = self._rows.get(pair)
            if rows is None:
                raise KeyError(f"pair {pair} is not in profile {self.profile.name!r}")
            k = np.argmin((rows[:, 0] - r) ** 2 + (rows[:, 1] - d) ** 2)
            return float(rows[k, 2])
        rs, ds, q = grid
        return float(_bilinear(rs, ds, q, r, d))

    def group_quality(
        self, pair: tuple[str, ...], n_light: int, n_direct: int, n_escalated: int
    ) -> float:
        """Quality of a group of queries served under one pair (or one model)."""
        if len(pair) == 1:
            return self.profile.model(pair[0]).quality_alone
        total = n_light + n_direct + n_escalated
        r = n_direct / total
        ran_light = n_light + n_escalated
        d = n_escalated / ran_light if ran_light else 0.0
        return self.pair_quality((pair[0], pair[1]), r, d)


def _bilinear(xs: np.ndarray, ys: np.ndarray, grid: np.ndarray, x: float, y: float) -> float:
    x = min(max(x, xs[0]), xs[-1])
    y = min(max(y, ys[0]), ys[-1])
    i = int(np.clip(np.searchsorted(xs, x, side="right") - 1, 0, max(len(xs) - 2, 0)))
    j = int(np.clip(np.searchsorted(ys, y, side="right") - 1, 0, max(len(ys) - 2, 0)))
    if len(xs) == 1 and len(ys) == 1:
        return float(grid[0, 0])
    if len(xs) == 1:  # one r (e.g. a discriminator-only table): linear in d
        return float(np.interp(y, ys, grid[0, :]))
    if len(ys) == 1:  # one d (router-only): linear in r
        return float(np.interp(x, xs, grid[:, 0]))
    tx = (x - xs[i]) / (xs[i + 1] - xs[i])
    ty = (y - ys[j]) / (ys[j + 1] - ys[j])
    return float(
        grid[i, j] * (1 - tx) * (1 - ty)
        + grid[i + 1, j] * tx * (1 - ty)
        + grid[i, j + 1] * (1 - tx) * ty
        + grid[i + 1, j + 1] * tx * ty
    )
