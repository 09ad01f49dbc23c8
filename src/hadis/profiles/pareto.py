"""Pareto filtering of configuration rows over (expected latency, quality).

A row is kept when no other row is at least as fast and at least as good with one of the
two strictly better. Exact ties (same latency and same quality) keep only the row that
comes first in table order, so the front never holds two indistinguishable rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hadis.profiles.model import ConfigRow, Metric, Profile


def pareto_front(rows: Iterable[ConfigRow], metric: Metric) -> list[ConfigRow]:
    """The non-dominated rows, ordered by increasing latency (then better quality)."""
    indexed = list(enumerate(rows))
    # Stable sort: fastest first, best quality first among equal latency, table order last.
    indexed.sort(key=lambda ir: (ir[1].latency_s, metric.cost(ir[1].quality), ir[0]))
    front: list[ConfigRow] = []
    best: float | None = None
    for _, row in indexed:
        if best is None or metric.better(row.quality, best):
            front.append(row)
            best = row.quality
    return front


def pareto_table(
    profile: Profile,
    *,
    per_pair: bool = False,
    pairs: Sequence[tuple[str, str]] | None = None,
    adjacent_only: bool = False,
) -> list[ConfigRow]:
    """Pareto-filter a profile's table.

    pairs / adjacent_only restrict the candidate rows first (adjacent = consecutive models by
    latency, as the paper did); per_pair keeps each pair's own front instead of the overall one.
    """
    allowed: set[tuple[str, str]] | None = None
    if adjacent_only:
        allowed = set(profile.adjacent_pairs())
    if pairs is not None:
        allowed = set(pairs) if allowed is None else allowed & set(pairs)
    rows = [c for c in profile.configs if allowed is None or c.pair in allowed]
    if not per_pair:
        return pareto_front(rows, profile.metric)
    out: list[ConfigRow] = []
    for pair in dict.fromkeys(c.pair for c in rows):
        out.extend(pareto_front([c for c in rows if c.pair == pair], profile.metric))
    return out
