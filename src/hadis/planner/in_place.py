"""Plans that load no model: a candidate fitted onto the weights workers already hold.

A worker holding one model's weights can serve every variant of them (other steps or
guidance) without a load. `plan_within` (cascade policies) finds the best candidate whose
models are all on loaded weights and whose GPUs per set of weights fit what the plan in
force has; the controller uses it for early (backlog) re-plans, so that chasing a burst
does not take workers offline for a model switch (engine/controller.py).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from hadis.core.plan import Plan, PlanRequest
from hadis.planner.candidates import Candidate
from hadis.planner.milp import Choice, choice_from_screen
from hadis.planner.screen import CandidateSet, screen, usable_batches
from hadis.profiles import Profile


def weights_of(profile: Profile, model: str) -> str:
    """What a worker must hold to serve `model` (ModelVariant.weights)."""
    return profile.model(model).weights


def gpus_by_weights(profile: Profile, gpus: Mapping[str, int]) -> Counter[str]:
    out: Counter[str] = Counter()
    for m, g in gpus.items():
        out[weights_of(profile, m)] += g
    return out


def loads_needed(held: Mapping[str, int], new: Plan, profile: Profile) -> int:
    """Workers that must load other weights for `new`, given the GPUs per set of weights
    the workers hold."""
    then = gpus_by_weights(profile, new.gpus)
    return sum(max(0, g - held.get(w, 0)) for w, g in then.items())


def keeps_commitments(plan: Plan, committed: Mapping[str, int], profile: Profile) -> bool:
    """`plan` keeps every worker that is moving to new weights on its way: per set of
    weights in `committed` (the workers assigned to weights some worker is moving to:
    `Engine.committed_weights`), it asks for at least as many GPUs."""
    then = gpus_by_weights(profile, plan.gpus)
    return all(then.get(w, 0) >= n for w, n in committed.items())


@dataclass(frozen=True)
class Option:
    batch: int
    stage_s: float  # planned stage latency (PlanRequest.stage_s)
    capacity_qps: float  # per GPU
    weights: str  # what a worker must hold to serve it (ModelVariant.weights)


def batch_options(req: PlanRequest, models: Iterable[str]) -> dict[str, list[Option]]:
    """Per model, its usable batch sizes with their stage latency and capacity (computed
    once per request: `fit_in_place` runs for many candidates)."""
    out = {}
    for name in models:
        m = req.profile.model(name)
        every = [
            Option(b, req.stage_s(m.batch_latency_s(b), name), m.capacity_qps(b), m.weights)
            for b in usable_batches(req, name)
        ]
        # only the (latency, capacity) front matters: an option that another beats on
        # both can never be the fastest that fits
        out[name] = [
            o
            for o in every
            if not any(
                p is not o
                and p.stage_s <= o.stage_s
                and p.capacity_qps >= o.capacity_qps
                and (p.stage_s, -p.capacity_qps, p.batch) < (o.stage_s, -o.capacity_qps, o.batch)
                for p in every
            )
        ]
    return out


def fit_in_place(
    req: PlanRequest,
    cand: Candidate,
    held: Mapping[str, int],
    options: Mapping[str, list[Option]],
) -> tuple[float, Choice] | None:
    """Batch sizes with which `cand` carries the request's demand within the SLO using at
    most `held[w]` GPUs of each set of weights w; the fastest such (planned path seconds,
    choice with the GPUs each model needs), or None. `options`: `batch_options`."""
    best: tuple[float, Choice] | None = None
    shares = dict(cand.shares)
    target, slo = req.target_qps, req.slo_s
    models = cand.models
    # a cascade's escalated path runs both stages: the columns of its light and heavy model
    stages = (
        (models.index(cand.light), models.index(cand.heavy))
        if cand.escalates and cand.heavy is not None
        else None
    )
    for combo in itertools.product(*(options[m] for m in models)):
        if stages is not None:
            path = combo[stages[0]].stage_s + combo[stages[1]].stage_s
        else:
            path = max(o.stage_s for o in combo)
        if path > slo or (best is not None and path >= best[0]):
            continue
        need: dict[str, int] = {}
        used: dict[str, int] = {}  # two variants may share one set of weights
        for m, o in zip(models, combo, strict=True):
            need[m] = g = math.ceil(target * shares[m] / o.capacity_qps - 1e-9)
            used[o.weights] = used.get(o.weights, 0) + g
        if any(g > held.get(w, 0) for w, g in used.items()):
            continue
        batch = {m: o.batch for m, o in zip(models, combo, strict=True)}
        best = (path, Choice(cand, batch, need))
    return best


def spread_within_weights(
    profile: Profile, choice: Choice, held: Mapping[str, int], total: int | None = None
) -> dict[str, int]:
    """The choice's GPUs plus other held GPUs of the same weights, given to that set's
    model with the most GPUs already (no worker loads anything), up to `total` GPUs in all
    (default: every held GPU)."""
    gpus = dict(choice.gpus)
    left = math.inf if total is None else total - sum(gpus.values())
    used = gpus_by_weights(profile, gpus)
    for w, have in held.items():
        spare = min(have - used.get(w, 0), left)
        models = [m for m in gpus if weights_of(profile, m) == w]
        if spare > 0 and models:
            gpus[max(models, key=lambda m: gpus[m])] += int(spare)
            left -= spare
    return gpus


def ranked_choices(
    req: PlanRequest, cs: CandidateSet, held: Mapping[str, int], limit: int
) -> list[Choice]:
    """Up to `limit` screened candidates that fit the request, best first: quality, then
    fewer workers that must load other weights (given `held`, GPUs per set of weights),
    then fewer GPUs; each with its batch sizes and the GPUs it needs per model."""
    sc = screen(req, cs)
    ok = sc.feasible(req.gpus)
    if not ok.size:
        return []
    profile = req.profile
    batch = sc.batch[ok]  # (K', M)
    gpus = np.zeros(batch.shape)
    for j, m in enumerate(cs.models):
        variant = profile.model(m)
        used = batch[:, j] > 0
        cap = np.array([variant.capacity_qps(int(b)) for b in batch[used, j]])
        gpus[used, j] = np.ceil(req.target_qps * cs.share[ok[used], j] / cap - 1e-9)
    names = sorted({weights_of(profile, m) for m in cs.models})
    col = {w: i for i, w in enumerate(names)}
    onehot = np.zeros((len(cs.models), len(names)))
    for j, m in enumerate(cs.models):
        onehot[j, col[weights_of(profile, m)]] = 1.0
    have = np.array([held.get(w, 0) for w in names], dtype=float)
    moved = np.maximum(gpus @ onehot - have, 0.0).sum(axis=1)
    order = np.lexsort((gpus.sum(axis=1), moved, cs.cost[ok]))[:limit]
    return [choice_from_screen(cs, sc, int(ok[k]), req) for k in order]
