"""Per-request screening of candidates, vectorised with numpy.

For every candidate it finds the batch size per model that needs the fewest GPUs while every
path (light, direct-heavy, light + escalation to heavy, each with its queueing delay) meets
the SLO. Because a plan runs exactly one candidate, a candidate is feasible exactly when that
number fits the GPU budget; the MILP and the enumerating solver both start from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hadis.core.plan import PlanRequest
from hadis.planner.candidates import Candidate, share_matrix
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
    # Per model, its batch options padded to B columns (ascending; padding: size 0, inf s).
    sizes: np.ndarray  # (M, B) int
    batch_s: np.ndarray  # (M, B) seconds per batch
    per_gpu_qps: np.ndarray  # (M, B) images per second per GPU (1 in the padding)
    # The (candidate, model) entries with a share: GPUs are computed per entry, not per cell.
    ent_k: np.ndarray  # (N,) candidate
    ent_j: np.ndarray  # (N,) model column
    ent_load: np.ndarray  # (N, B) share / per-GPU throughput of each option of the model
    esc_k: np.ndarray  # (E,) escalating candidates
    esc_light: np.ndarray  # (E,) their light model column
    esc_heavy: np.ndarray  # (E,) their heavy model column
    esc_light_ent: np.ndarray  # (E,) entry of their light model
    esc_heavy_ent: np.ndarray  # (E,) entry of their heavy model
    options_cache: dict[bytes, OptionSet] = field(default_factory=dict, compare=False, repr=False)

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
        variants = [profile.model(m) for m in models]
        width = max(len(v.batch_options) for v in variants)
        sizes = np.zeros((len(models), width), dtype=int)
        batch_s = np.full((len(models), width), np.inf)
        per_gpu = np.ones((len(models), width))
        for j, v in enumerate(variants):
            for i, b in enumerate(v.batch_options):
                sizes[j, i], batch_s[j, i], per_gpu[j, i] = (
                    b,
                    v.batch_latency_s(b),
                    v.capacity_qps(b),
                )
        esc_k = np.flatnonzero(pair_id >= 0)
        ent_k, ent_j = np.nonzero(share)
        entry = np.full(share.shape, -1)  # (K, M) -> entry index
        entry[ent_k, ent_j] = np.arange(len(ent_k))
        esc_light = np.array([pairs[pair_id[k]][0] for k in esc_k], dtype=int)
        esc_heavy = np.array([pairs[pair_id[k]][1] for k in esc_k], dtype=int)
        return cls(
            ent_k=ent_k,
            ent_j=ent_j,
            ent_load=share[ent_k, ent_j][:, None] / per_gpu[ent_j],
            esc_light_ent=entry[esc_k, esc_light],
            esc_heavy_ent=entry[esc_k, esc_heavy],
            sizes=sizes,
            batch_s=batch_s,
            per_gpu_qps=per_gpu,
            esc_k=esc_k,
            esc_light=esc_light,
            esc_heavy=esc_heavy,
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
    """Batch sizes whose planned stage latency (the batch, the wait for the one in progress
    and the queue: PlanRequest.stage_s) fits the SLO on its own."""
    m = req.profile.model(model)
    fits = [req.stage_s(m.batch_latency_s(b), model) <= req.slo_s for b in m.batch_options]
    return tuple(b for b, ok in zip(m.batch_options, fits, strict=True) if ok)


def fallback_batches(req: PlanRequest, model: str) -> tuple[int, ...]:
    """Batch sizes to serve with: the usable ones; when the queue already makes every size
    late, those that fit the SLO without it (draining fast beats batch 1); else batch 1."""
    usable = usable_batches(req, model)
    if usable:
        return usable
    m = req.profile.model(model)
    idle = tuple(b for b in m.batch_options if req.batch_factor * m.batch_latency_s(b) <= req.slo_s)
    return idle or (1,)


@dataclass(frozen=True)
class Screened:
    """Per candidate: fewest GPUs (inf when no batch choice meets the SLO) and the batch
    size per model (column of CandidateSet.models) that achieves it."""

    need: np.ndarray  # (K,) float, inf when infeasible at any GPU count
    batch: np.ndarray  # (K, M) int, 0 where the model is unused
    options: dict[str, tuple[int, ...]]

    def feasible(self, gpus: int) -> np.ndarray:
        return np.flatnonzero(self.need <= gpus)


@dataclass(frozen=True)
class OptionSet:
    """The useful batch options for one pattern of usable ones, compacted to U columns per
    model (ascending batch size; padding columns are invalid). Few patterns recur in a
    run, so they are cached on the candidate set."""

    options: dict[str, tuple[int, ...]]
    sizes: np.ndarray  # (M, U) batch size, 0 in the padding
    batch_s: np.ndarray  # (M, U) seconds per batch, inf in the padding
    ent_load: np.ndarray  # (N, U) share / per-GPU throughput
    ent_valid: np.ndarray  # (N, U)


def _options(cs: CandidateSet, usable: np.ndarray) -> OptionSet:
    key = usable.tobytes()
    hit = cs.options_cache.get(key)
    if hit is None:
        useful = _useful_mask(cs, usable)
        width = max(1, int(useful.sum(axis=1).max()))
        take = np.zeros((len(cs.models), width), dtype=int)
        valid = np.zeros((len(cs.models), width), dtype=bool)
        for j in range(len(cs.models)):
            cols = np.flatnonzero(useful[j])
            take[j, : len(cols)], valid[j, : len(cols)] = cols, True
        sizes = np.where(valid, np.take_along_axis(cs.sizes, take, 1), 0)
        hit = OptionSet(
            options={m: tuple(int(b) for b in sizes[j][valid[j]]) for j, m in enumerate(cs.models)},
            sizes=sizes,
            batch_s=np.where(valid, np.take_along_axis(cs.batch_s, take, 1), np.inf),
            ent_load=np.take_along_axis(cs.ent_load, take[cs.ent_j], 1),
            ent_valid=valid[cs.ent_j],
        )
        cs.options_cache[key] = hit
    return hit


def _useful_mask(cs: CandidateSet, usable: np.ndarray) -> np.ndarray:
    """(M, B): usable options (fit the SLO on their own) that no other usable option beats
    on both throughput and latency (among exact equals the smaller batch stays). Under
    L(b) = 0.9 b L(1) every b > 2 has the throughput of b = 2 at a higher latency, so only
    {1, 2} remain; measured latencies keep whatever is on their own front."""
    cap, lat = cs.per_gpu_qps, cs.batch_s
    o_cap, b_cap = cap[:, :, None], cap[:, None, :]  # axis 1: the other option o, axis 2: b
    o_lat, b_lat = lat[:, :, None], lat[:, None, :]
    width = cap.shape[1]
    o_before_b = np.arange(width)[:, None] < np.arange(width)[None, :]
    same = (o_cap == b_cap) & (o_lat == b_lat)
    beats = (o_cap >= b_cap) & (o_lat <= b_lat) & (~same | o_before_b) & usable[:, :, None]
    beats &= ~np.eye(width, dtype=bool)[None, :, :]
    return usable & ~beats.any(axis=1)


def screen(req: PlanRequest, cs: CandidateSet) -> Screened:
    """GPUs needed by every candidate at its best batch sizes, in a few array operations.

    Per model the best option is the first minimum (the smallest batch among ties); for an
    escalating candidate the (light, heavy) combination whose two stages fit the SLO
    together, first in (light batch, heavy batch) order among ties.
    """
    K, M = cs.share.shape
    delay = np.array([req.queue_delay_s(m) for m in cs.models])[:, None]
    opt = _options(cs, req.batch_factor * cs.batch_s + delay <= req.slo_s)
    per = np.ceil(req.target_qps * opt.ent_load - 1e-9)  # (N, U) GPUs per entry and option
    per = np.where(opt.ent_valid, np.maximum(per, 0.0), np.inf)
    arg = np.argmin(per, axis=1)
    best = per[np.arange(len(arg)), arg]
    need = np.bincount(cs.ent_k, weights=best, minlength=K)
    batch = np.zeros((K, M), dtype=int)
    batch[cs.ent_k, cs.ent_j] = np.where(np.isfinite(best), opt.sizes[cs.ent_j, arg], 0)
    if cs.esc_k.size:
        k, lj, hj = cs.esc_k, cs.esc_light, cs.esc_heavy
        path_s = req.batch_factor * opt.batch_s + delay
        width = path_s.shape[1]
        total = per[cs.esc_light_ent, :, None] + per[cs.esc_heavy_ent, None, :]  # (E, U, U)
        fits = path_s[lj, :, None] + path_s[hj, None, :] <= req.slo_s
        total = np.where(fits, total, np.inf).reshape(len(k), -1)
        pick = np.argmin(total, axis=1)
        need[k] = total[np.arange(len(k)), pick]
        ok = np.isfinite(need[k])
        il, ih = np.divmod(pick, width)
        batch[k, lj] = np.where(ok, opt.sizes[lj, il], 0)
        batch[k, hj] = np.where(ok, opt.sizes[hj, ih], 0)
    return Screened(need=need, batch=batch, options=opt.options)
