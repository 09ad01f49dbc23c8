"""Planning candidates: configuration rows (and single models) with their per-model load."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from hadis.profiles import ConfigRow, Metric, Profile


@dataclass(frozen=True, slots=True)
class Candidate:
    """One way to route queries: a table row, or one model serving everything.

    shares: fraction of demand that arrives at each model (zero shares omitted); the light
    model carries 1 - r (router-bypassed queries never load it), the heavy model f.
    """

    light: str
    heavy: str | None
    r: float
    d: float
    quality: float
    latency_s: float
    shares: tuple[tuple[str, float], ...]
    escalates: bool

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(m for m, _ in self.shares)

    @property
    def pair(self) -> tuple[str, ...]:
        return (self.light,) if self.heavy is None else (self.light, self.heavy)


def from_row(row: ConfigRow) -> Candidate:
    shares = tuple((m, s) for m, s in ((row.light, row.light_share), (row.heavy, row.f)) if s > 0)
    return Candidate(
        light=row.light,
        heavy=row.heavy,
        r=row.r,
        d=row.d,
        quality=row.quality,
        latency_s=row.latency_s,
        shares=shares,
        escalates=row.escalates,
    )


def single_model(profile: Profile, name: str) -> Candidate:
    m = profile.model(name)
    return Candidate(
        light=name,
        heavy=None,
        r=0.0,
        d=0.0,
        quality=m.quality_alone,
        latency_s=m.latency_s[1],
        shares=((name, 1.0),),
        escalates=False,
    )


def build_candidates(
    profile: Profile, rows: Iterable[ConfigRow], *, include_single_models: bool = True
) -> list[Candidate]:
    """Candidates from table rows plus, optionally, each model alone (always a valid choice)."""
    out = [from_row(r) for r in rows]
    if include_single_models:
        out.extend(single_model(profile, m.name) for m in profile.models)
    return out


def share_matrix(candidates: Sequence[Candidate]) -> tuple[tuple[str, ...], np.ndarray]:
    """The models the candidates load (sorted) and each candidate's share at each: (K, M)."""
    models = tuple(sorted({m for c in candidates for m in c.models}))
    col = {m: i for i, m in enumerate(models)}
    shares = np.zeros((len(candidates), len(models)))
    for k, c in enumerate(candidates):
        for m, s in c.shares:
            shares[k, col[m]] = s
    return models, shares


def prune_dominated(candidates: Sequence[Candidate], metric: Metric) -> list[Candidate]:
    """Drop candidates another candidate beats on every count, whatever the request.

    A dominates B when A's quality is at least as good, A loads no model more than B does,
    and A adds no latency path B lacks (A escalates only if B escalates on the same pair).
    Any plan using B then stays feasible with A at equal or better quality, so the planning
    optimum is unchanged while the MILP gets much smaller. Among exact equals the first
    in table order is kept.
    """
    _, shares = share_matrix(candidates)
    # Best quality first, so every dominator is seen before what it dominates (a dominator
    # of equal quality loads less, hence has the lower expected latency).
    order = sorted(
        range(len(candidates)),
        key=lambda k: (metric.cost(candidates[k].quality), candidates[k].latency_s, k),
    )
    kept: list[int] = []
    for k in order:
        c = candidates[k]
        if kept:
            covers = np.flatnonzero(np.all(shares[kept] <= shares[k] + 1e-12, axis=1))
            if any(
                not candidates[kept[j]].escalates
                or (c.escalates and candidates[kept[j]].pair == c.pair)
                for j in covers
            ):
                continue
        kept.append(k)
    return [candidates[k] for k in sorted(kept)]
