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
from collections.abc import Mapping

from hadis.core.plan import PlanRequest
from hadis.planner.candidates import Candidate
from hadis.planner.milp import Choice
from hadis.planner.screen import usable_batches
from hadis.profiles import Profile


def weights_of(profile: Profile, model: str) -> str:
    """What a worker must hold to serve `model`: its source (its name if it has none)."""
    return profile.model(model).source or model


def gpus_by_weights(profile: Profile, gpus: Mapping[str, int]) -> Counter[str]:
    out: Counter[str] = Counter()
    for m, g in gpus.items():
        out[weights_of(profile, m)] += g
    return out


def fit_in_place(
    req: PlanRequest, cand: Candidate, held: Mapping[str, int]
) -> tuple[float, Choice] | None:
    """Batch sizes with which `cand` carries the request's demand within the SLO using at
    most `held[w]` GPUs of each set of weights w; the fastest such (planned path seconds,
    choice with the GPUs each model needs), or None."""
    profile = req.profile
    options = [usable_batches(req, m) for m in cand.models]
    best: tuple[float, Choice] | None = None
    for combo in itertools.product(*options):
        batch = dict(zip(cand.models, combo, strict=True))
        stage = {m: req.stage_s(profile.model(m).batch_latency_s(b), m) for m, b in batch.items()}
        if cand.escalates and cand.heavy is not None:
            path = stage[cand.light] + stage[cand.heavy]
        else:
            path = max(stage.values())
        if path > req.slo_s:
            continue
        need = {
            m: math.ceil(req.target_qps * s / profile.model(m).capacity_qps(batch[m]) - 1e-9)
            for m, s in cand.shares
        }
        per_weights = gpus_by_weights(profile, need)
        if any(g > held.get(w, 0) for w, g in per_weights.items()):
            continue
        if best is None or path < best[0]:
            best = (path, Choice(cand, batch, need))
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
