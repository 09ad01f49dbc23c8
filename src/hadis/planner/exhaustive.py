"""Brute-force reference planner: every candidate x every batch size per model.

Slow on big instances; it exists to check the MILP (tests) and to explain it (same rules).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from hadis.core.plan import PlanRequest
from hadis.planner.candidates import Candidate
from hadis.planner.milp import Choice
from hadis.planner.screen import usable_batches


def solve_exhaustive(req: PlanRequest, candidates: Sequence[Candidate]) -> Choice | None:
    profile, metric = req.profile, req.profile.metric
    batches = {m: usable_batches(req, m) for c in candidates for m in c.models}
    best: tuple[tuple[float, float, int], Choice] | None = None
    for cand in candidates:
        options = [batches[m] for m in cand.models]
        for combo in itertools.product(*options):
            batch = dict(zip(cand.models, combo, strict=True))
            if cand.escalates and cand.heavy is not None:
                total = sum(
                    req.stage_s(profile.model(m).batch_latency_s(batch[m]), m)
                    for m in (cand.light, cand.heavy)
                )
                if total > req.slo_s:
                    continue
            gpus = {
                m: math.ceil(req.target_qps * s / profile.model(m).capacity_qps(batch[m]) - 1e-9)
                for m, s in cand.shares
            }
            used = sum(gpus.values())
            if used > req.gpus:
                continue
            key = (metric.cost(cand.quality), cand.latency_s, used)
            if best is None or key < best[0]:
                best = (key, Choice(cand, batch, gpus))
    return None if best is None else best[1]
