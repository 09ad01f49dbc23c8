"""Per-request screening of candidates, vectorised with numpy.

For every candidate it finds the batch size per model that needs the fewest GPUs while every
path (light, direct-heavy, light + escalation to heavy, each with its queueing delay) meets
the SLO. Because a plan runs exactly one candidate, a candidate is feasible exactly when that
number fits the GPU budget; the MILP and the enumerating solver both start from here.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hadis.planner.candidates import Candidate, share_matrix
from hadis.planner.types import PlanRequest
from hadis.profiles import Profile


@dataclass(frozen=True)
class CandidateSet:
    """Candidates as arrays (built once per profile and table)."""

    candidates: tuple[Candidate, ...]
    models: tuple[str, ...]
    share: np.ndarray  # (K, M) fraction of demand at each model
    cost: np.ndarray  # (K,) quality as a number to minimise
    latency_s: np.ndarray  # (K,) expected per-query latency (tie-break)
    escalates: np.ndarray  # (K,) bool
    pair_id: np.ndarray  # (K,) index into esc_pairs, -1 when not escalating
    esc_pairs: tuple[tuple[int, int], ...]  # (light model col, heavy model col)

    @classmethod
    def build(cls, profile: Profile, candidates: Sequence[Candidate]) -> CandidateSet:
        models, share = share_matrix(candidates)
        col = {m: i for i, m in enumerate(models)}
        pairs = sorted(
            {(col[c.light], col[c.heavy]) for c in candidates if c.escalates and c.heavy}
        )
        pair_idx = {p: i for i, p in enumerate(pairs)}
        pair_id = np.array(
            [
                pair_idx[(col[c.light], col[c.heavy])] if c.escalates and c.heavy else -1
                for c in candidates
            ],
            dtype=int,
        )
        return cls(
            candidates=tuple(candidates),
            models=models,
            share=share,
            cost=np.array([profile.metric.cost(c.quality) for c in candidates]),
            latency_s=np.array([c.latency_s for c in candidates]),
            escalates=pair_id >= 0,
            pair_id=pair_id,
            esc_pairs=tuple(pairs),
        )


def usable_batches(req: PlanRequest, model: str) -> tuple[int, ...]:
    """Batch sizes whose latency plus current queueing delay fits the SLO on their own."""
    m = req.profile.model(model)
    q = req.queue_delay_s(model)
    return tuple(b for b in m.batch_options if m.batch_latency_s(b) + q <= req.slo_s)


def useful_batches(req: PlanRequest, model: str) -> tuple[int, ...]:
    """Batch sizes that meet the SLO on their own (with the queueing delay), minus those
    another one beats on both latency and throughput.

    Under L(b) = 0.9 b L(1) every b > 2 has the throughput of b = 2 at a higher latency, so
    only {1, 2} remain; measured latencies keep whatever is on their own front.
    """
    m = req.profile.model(model)
    usable = usable_batches(req, model)
    stats = {b: (m.capacity_qps(b), m.batch_latency_s(b)) for b in usable}
    return tuple(
        b
        for b in usable
        if not any(
            o != b
            and stats[o][0] >= stats[b][0]
            and stats[o][1] <= stats[b][1]
            and (stats[o] != stats[b] or o < b)
            for o in usable
        )
    )


@dataclass(frozen=True)
class Screened:
    """Per candidate: fewest GPUs (inf when no batch choice meets the SLO) and the batch
    size per model (column of CandidateSet.models) that achieves it."""

    need: np.ndarray  # (K,) float, inf when infeasible at any GPU count
    batch: np.ndarray  # (K, M) int, 0 where the model is unused
    options: dict[str, tuple[int, ...]]

    def feasible(self, gpus: int) -> np.ndarray:
        return np.flatnonzero(self.need <= gpus)


def screen(req: PlanRequest, cs: CandidateSet) -> Screened:
    K, M = cs.share.shape
    demand = req.target_qps
    options = {m: useful_batches(req, m) for m in cs.models}
    need = np.zeros(K)
    batch = np.zeros((K, M), dtype=int)
    per_option: list[list[tuple[int, float, np.ndarray]]] = []  # per model: (b, lat, need_k)
    for j, name in enumerate(cs.models):
        model = req.profile.model(name)
        q = req.queue_delay_s(name)
        rows = []
        for b in options[name]:
            gpus = np.ceil(demand * cs.share[:, j] / model.capacity_qps(b) - 1e-9)
            rows.append((b, model.batch_latency_s(b) + q, np.maximum(gpus, 0.0)))
        per_option.append(rows)
        used = cs.share[:, j] > 0
        if not rows:
            need[used] = np.inf
            continue
        stacked = np.stack([r[2] for r in rows])  # (B, K)
        best = np.argmin(stacked, axis=0)  # first minimum: the smallest batch among ties
        need += np.where(used, stacked[best, np.arange(K)], 0.0)
        batch[:, j] = np.where(used, np.array([r[0] for r in rows])[best], 0)
    # Escalating candidates: the light + heavy path must fit the SLO as a whole.
    for p, (lj, hj) in enumerate(cs.esc_pairs):
        ks = np.flatnonzero(cs.pair_id == p)
        best_need = np.full(len(ks), np.inf)
        best_b = np.zeros((len(ks), 2), dtype=int)
        for (bl, ll, nl), (bh, lh, nh) in itertools.product(per_option[lj], per_option[hj]):
            if ll + lh > req.slo_s:
                continue
            total = nl[ks] + nh[ks]
            better = total < best_need
            best_need[better] = total[better]
            best_b[better] = (bl, bh)
        need[ks] = best_need
        batch[ks, lj], batch[ks, hj] = best_b[:, 0], best_b[:, 1]
    return Screened(need=need, batch=batch, options=options)
