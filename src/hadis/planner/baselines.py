"""Planning policies of the baselines: Clipper-Light/Heavy, INFaaS-Acc, Proteus.

None of them cascades; each runs single models. How each is modelled is in
docs/policies.md (and in the class docstrings).
"""

from __future__ import annotations

import time

import numpy as np

from hadis.core.plan import Plan, PlanRequest
from hadis.planner.assemble import assemble_plan
from hadis.planner.candidates import single_model
from hadis.planner.hadis_policy import throughput_fallback
from hadis.planner.registry import register
from hadis.planner.screen import fallback_batches, usable_batches
from hadis.profiles import Profile

INFAAS_UP_FRACTION = 0.89
PROTEUS_MARGIN = 1.25


def max_throughput_batch(req: PlanRequest, model: str) -> int:
    """Highest-throughput batch size that meets the SLO on its own (smallest among ties)."""
    m = req.profile.model(model)
    usable = fallback_batches(req, model)
    return max(usable, key=lambda b: (m.capacity_qps(b), -b))


def largest_batch(req: PlanRequest, model: str) -> int:
    """Largest batch size that meets the SLO on its own (batch 1 if none does)."""
    return max(fallback_batches(req, model))


def by_quality(profile: Profile) -> list[str]:
    """Model names, best quality first."""
    ranked = sorted(profile.models, key=lambda m: profile.metric.cost(m.quality_alone))
    return [m.name for m in ranked]


def _single_model_plan(
    req: PlanRequest, policy: str, model: str, batch: int, solve_ms: float, **kw: object
) -> Plan:
    cap = req.gpus * req.profile.model(model).capacity_qps(batch)
    return assemble_plan(
        req,
        policy,
        single_model(req.profile, model),
        {model: batch},
        {model: req.gpus},
        feasible=cap >= req.target_qps,
        solve_ms=solve_ms,
        **kw,  # type: ignore[arg-type]
    )


@register("clipper-light")
class ClipperLight:
    """Every GPU runs the fastest model; batch = the largest that meets the SLO."""

    name: str  # set by @register

    def plan(self, req: PlanRequest) -> Plan:
        model = min(req.profile.models, key=lambda m: m.latency_s[1]).name
        return _single_model_plan(req, self.name, model, largest_batch(req, model), 0.0)


@register("clipper-heavy")
class ClipperHeavy:
    """Every GPU runs the best-quality model; batch = the largest that meets the SLO; only
    queries that can finish within the SLO are admitted (admission factor 1.0)."""

    name: str  # set by @register

    def plan(self, req: PlanRequest) -> Plan:
        model = by_quality(req.profile)[0]
        return _single_model_plan(
            req, self.name, model, largest_batch(req, model), 0.0, admission_factor=1.0
        )


@register("infaas-acc")
class InfaasAcc:
    """One variant at a time: the best-quality one whose expected latency (execution +
    queueing) meets the SLO with enough capacity. From the previous plan it steps one variant
    down when over the SLO and one up when under 0.89 x SLO and the better one would fit."""

    name: str  # set by @register

    def _expected_latency_s(self, req: PlanRequest, model: str) -> float:
        batch = max_throughput_batch(req, model)
        m = req.profile.model(model)
        if req.gpus * m.capacity_qps(batch) < req.target_qps:
            return float("inf")  # cannot keep up: queues grow without bound
        backlog = sum(req.queue.values())
        wait = req.queue_factor * backlog / req.demand_qps if req.demand_qps > 0 else 0.0
        return m.batch_latency_s(batch) + wait

    def plan(self, req: PlanRequest) -> Plan:
        start = time.perf_counter()
        ladder = by_quality(req.profile)
        prev = req.previous
        current = prev.light if prev is not None and prev.light in ladder else None
        if current is None:
            fits = [m for m in ladder if self._expected_latency_s(req, m) <= req.slo_s]
            model = fits[0] if fits else ladder[-1]
        else:
            i = ladder.index(current)
            latency = self._expected_latency_s(req, current)
            if latency > req.slo_s and i + 1 < len(ladder):
                model = ladder[i + 1]
            elif (
                latency < INFAAS_UP_FRACTION * req.slo_s
                and i > 0
                and self._expected_latency_s(req, ladder[i - 1]) <= req.slo_s
            ):
                model = ladder[i - 1]
            else:
                model = current
        solve_ms = (time.perf_counter() - start) * 1e3
        return _single_model_plan(req, self.name, model, max_throughput_batch(req, model), solve_ms)


@register("proteus")
class Proteus:
    """MILP over GPUs per variant and the share of queries each variant serves (no cascade):
    best share-weighted quality with every variant's capacity >= 1.25 x its share of demand.
    Queries are split at random by those shares; quality is the share-weighted mean of the
    variants' own quality (a linear estimate)."""

    name: str  # set by @register

    def plan(self, req: PlanRequest) -> Plan:
        start = time.perf_counter()
        profile = req.profile
        names = [m.name for m in profile.models if usable_batches(req, m.name)]
        if not names:  # queues so long that no batch of any model fits the SLO
            return throughput_fallback(req, self.name, (time.perf_counter() - start) * 1e3)
        from scipy.optimize import LinearConstraint, milp  # here: importing hadis stays light

        batch = {n: max_throughput_batch(req, n) for n in names}
        k = len(names)
        # variables: p_0..p_k-1 (continuous shares), x_0..x_k-1 (integer GPUs)
        quality_cost = [profile.metric.cost(profile.model(n).quality_alone) for n in names]
        cost = np.concatenate([quality_cost, 1e-6 * np.ones(k)])
        a = np.zeros((k + 2, 2 * k))
        a[0, :k] = 1
        a[1, k:] = 1
        for i, n in enumerate(names):
            a[2 + i, i] = PROTEUS_MARGIN * req.demand_qps
            a[2 + i, k + i] = -profile.model(n).capacity_qps(batch[n])
        lb = np.concatenate([[1, 0], np.full(k, -np.inf)])
        ub = np.concatenate([[1, req.gpus], np.zeros(k)])
        res = milp(
            cost,
            integrality=np.concatenate([np.zeros(k), np.ones(k)]),
            bounds=(np.zeros(2 * k), np.concatenate([np.ones(k), np.full(k, req.gpus)])),
            constraints=LinearConstraint(a, lb, ub),
            options={"mip_rel_gap": 1e-9},
        )
        solve_ms = (time.perf_counter() - start) * 1e3
        if res.x is None:
            return throughput_fallback(req, self.name, solve_ms)
        shares = {n: float(res.x[i]) for i, n in enumerate(names) if res.x[i] > 1e-9}
        total = sum(shares.values())
        shares = {n: s / total for n, s in shares.items()}
        gpus = {n: int(round(res.x[k + i])) for i, n in enumerate(names) if n in shares}
        quality = sum(s * profile.model(n).quality_alone for n, s in shares.items())
        best = max(shares, key=shares.__getitem__)
        return assemble_plan(
            req,
            self.name,
            single_model(profile, best),
            batch,
            gpus,
            feasible=True,
            solve_ms=solve_ms,
            split=shares,
            quality=quality,
        )
