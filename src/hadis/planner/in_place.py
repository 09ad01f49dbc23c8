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

from hadis.core.plan import PlanRequest
from hadis.planner.candidates import Candidate
from hadis.planner.milp import Choice
from hadis.planner.screen import usable_batches
from hadis.profiles import Profile


def weights_of(profile: Profile, model: str) -> str:
    """What a worker must hold to serve `model` (ModelVariant.weights)."""
    return profile.model(model).weights


def gpus_by_weights(profile: Profile, gpus: Mapping[str, int]) -> Counter[str]:
    out: Counter[str] = Counter()
    for m, g in gpus.items():
        out[weights_of(profile, m)] += g
    return out


@dataclass(frozen=True)
class Option:
    batch: int
    stage_s: float  # planned stage latency (PlanRequest.stage_s)
    capacity_qps: float  # per GPU


def batch_options(req: PlanRequest, models: Iterable[str]) -> dict[str, list[Option]]:
    """Per model, its usable batch sizes with their stage latency and capacity (computed
    once per request: `fit_in_place` runs for many candidates)."""
    out = {}
    for name in models:
        m = req.profile.model(name)
        every = [
            Option(b, req.stage_s(m.batch_latency_s(b), name), m.capacity_qps(b))
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
    profile = req.profile
    best: tuple[float, Choice] | None = None
    shares = dict(cand.shares)
    for combo in itertools.product(*(options[m] for m in cand.models)):
        pick = dict(zip(cand.models, combo, strict=True))
        if cand.escalates and cand.heavy is not None:
            path = pick[cand.light].stage_s + pick[cand.heavy].stage_s
        else:
            path = max(o.stage_s for o in combo)
        if path > req.slo_s or (best is not None and path >= best[0]):
            continue
        need = {
            m: math.ceil(req.target_qps * shares[m] / o.capacity_qps - 1e-9)
            for m, o in pick.items()
        }
        used = gpus_by_weights(profile, need)  # two variants may share one set of weights
        if any(g > held.get(w, 0) for w, g in used.items()):
            continue
        best = (path, Choice(cand, {m: o.batch for m, o in pick.items()}, need))
    return best


def spread_within_weights(
    profile: Profile, choice: Choice, held: Mapping[str, int]
) -> dict[str, int]:
    """The choice's GPUs plus every other held GPU of the same weights, given to that set's
    model with the most GPUs already (no worker loads anything)."""
    gpus = dict(choice.gpus)
    used = gpus_by_weights(profile, gpus)
    for w, have in held.items():
        spare = have - used.get(w, 0)
        models = [m for m in gpus if weights_of(profile, m) == w]
        if spare > 0 and models:
            gpus[max(models, key=lambda m: gpus[m])] += spare
    return gpus
