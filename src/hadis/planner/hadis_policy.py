"""HADIS and DiffServe planning policies (both solve the cascade MILP) and the fallback."""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from hadis.core.plan import Plan, PlanRequest
from hadis.errors import HadisError
from hadis.planner.assemble import assemble_plan
from hadis.planner.candidates import (
    Candidate,
    build_candidates,
    from_row,
    prune_dominated,
    single_model,
)
from hadis.planner.in_place import (
    batch_options,
    fit_in_place,
    gpus_by_weights,
    ranked_choices,
    spread_within_weights,
    weights_of,
)
from hadis.planner.milp import Choice, solve_enumerate, solve_milp
from hadis.planner.registry import register
from hadis.planner.screen import CandidateSet, fallback_batches
from hadis.profiles import Profile, pareto_table

TableChoice = Literal["full", "pareto", "pareto-adjacent"]
TABLE_CHOICES: tuple[str, ...] = ("full", "pareto", "pareto-adjacent")


def throughput_fallback(
    req: PlanRequest, policy: str, solve_ms: float, models: Sequence[str] | None = None
) -> Plan:
    """When nothing carries the demand: every GPU on the model with the most throughput.

    r = d = 0 (quality is shed to keep up); batch = the highest-throughput size that still
    meets the SLO (with the queue, else without it, else batch 1). The plan reports
    feasible=False and the shortfall.
    """
    names = list(models) if models else [m.name for m in req.profile.models]

    def best_batch(name: str) -> int:
        usable = fallback_batches(req, name)
        return max(usable, key=lambda b: (req.profile.model(name).capacity_qps(b), -b))

    name = max(names, key=lambda n: req.profile.model(n).capacity_qps(best_batch(n)))
    cand = single_model(req.profile, name)
    return assemble_plan(
        req,
        policy,
        cand,
        {name: best_batch(name)},
        {name: req.gpus},
        feasible=False,
        solve_ms=solve_ms,
        note="no configuration carries the demand within the SLO: throughput fallback",
    )


SOLVERS = {"milp": solve_milp, "enumerate": solve_enumerate}
# The planning problem decomposes per candidate (one candidate per plan), so enumeration is
# exact and ~10x faster than HiGHS's fixed MIP set-up; the MILP stays selectable and both
# are tested against brute force. Ties between equally good plans may break differently.
DEFAULT_SOLVER = "enumerate"

# Candidate sets per (profile, table key), shared by every policy instance: a simulation
# sweep builds a policy per run, and pruning the paper table costs ~10 ms each time.
_CANDIDATE_SETS: dict[tuple[int, Hashable], tuple[weakref.ref[Profile], CandidateSet]] = {}
_MAX_CACHED = 32


def cached_candidate_set(
    profile: Profile, key: Hashable, build: Callable[[], CandidateSet]
) -> CandidateSet:
    """`build()` once per live profile object and key (profiles are immutable)."""
    slot = (id(profile), key)
    hit = _CANDIDATE_SETS.get(slot)
    if hit is not None and hit[0]() is profile:
        return hit[1]
    cs = build()
    if len(_CANDIDATE_SETS) >= _MAX_CACHED:
        _CANDIDATE_SETS.pop(next(iter(_CANDIDATE_SETS)))
    _CANDIDATE_SETS[slot] = (weakref.ref(profile), cs)
    return cs


class _CascadePolicy:
    """Shared machinery: candidates cached per profile, MILP (or enumeration), fallback."""

    name = "cascade"

    def __init__(self, solver: str = DEFAULT_SOLVER) -> None:
        if solver not in SOLVERS:
            raise HadisError(f"unknown solver {solver!r}; valid: {', '.join(SOLVERS)}")
        self.solver = solver
        # unpruned candidates, best quality first (models, cost, candidate), for plan_within
        self._all: tuple[Profile, list[tuple[frozenset[str], float, Candidate]]] | None = None

    def candidate_set(self, profile: Profile) -> CandidateSet:
        """The profile's candidates minus request-independent dominated ones (cached)."""

        def build() -> CandidateSet:
            pruned = prune_dominated(self._build_candidates(profile), profile.metric)
            return CandidateSet.build(profile, pruned)

        return cached_candidate_set(profile, self._candidates_key(profile), build)

    def _candidates_key(self, profile: Profile) -> Hashable:
        """What the candidate set depends on besides the profile."""
        raise NotImplementedError

    def _build_candidates(self, profile: Profile) -> list[Candidate]:
        raise NotImplementedError

    def _fallback_models(self, profile: Profile) -> Sequence[str] | None:
        return None

    def _solve(self, req: PlanRequest, cs: CandidateSet) -> Choice | None:
        return SOLVERS[self.solver](req, cs)

    def plan_within(
        self, req: PlanRequest, current: Plan, held: Mapping[str, int] | None = None
    ) -> Plan | None:
        """The best plan that loads no model: every model on weights the workers hold
        (`held`, GPUs per set of weights; default: the plan in force's), within those GPUs
        per set of weights (planner/in_place.py). None when no candidate of this policy
        carries the demand that way."""
        profile = req.profile
        held = held if held is not None else gpus_by_weights(profile, current.gpus)
        if self._all is None or self._all[0] is not profile:
            cost = profile.metric.cost
            ordered = sorted(self._build_candidates(profile), key=lambda c: cost(c.quality))
            self._all = (profile, [(frozenset(c.models), cost(c.quality), c) for c in ordered])
        on_held = [m.name for m in profile.models if held.get(weights_of(profile, m.name), 0)]
        options = batch_options(req, on_held)
        best: tuple[tuple[float, float], Choice] | None = None
        for models, cost_k, cand in self._all[1]:  # best quality first
            if best is not None and cost_k > best[0][0]:
                break  # no candidate left can be better; equals are compared on latency
            if not models <= options.keys():
                continue
            fit = fit_in_place(req, cand, held, options)
            if fit is not None and (best is None or (cost_k, fit[0]) < best[0]):
                best = ((cost_k, fit[0]), fit[1])
        if best is None:
            return None
        return self._on_workers(req, best[1], held, spread_spare=False)

    def _on_workers(
        self, req: PlanRequest, choice: Choice, held: Mapping[str, int], *, spread_spare: bool
    ) -> Plan:
        """The choice's plan on the workers as they are: the GPUs it needs plus every
        worker that holds weights it uses; the rest spread over its models, or idle."""
        return assemble_plan(
            req,
            self.name,
            choice.candidate,
            choice.batch,
            spread_within_weights(req.profile, choice, held, req.gpus),
            feasible=True,
            solve_ms=0.0,
            spread_spare=spread_spare,
            note="" if spread_spare else "on the loaded weights: loads no model",
        )

    def ranked_plans(
        self, req: PlanRequest, held: Mapping[str, int], limit: int = 32
    ) -> list[Plan]:
        """Up to `limit` plans that carry the request, best quality first, each on the
        workers as they are (`held`, GPUs per set of weights): the GPUs a candidate
        needs, plus every worker that already holds weights it uses, plus the rest spread
        over its models (planner/in_place.py `ranked_choices`). For the controller to
        choose among by what happens while a plan is adopted (planner/transition.py)."""
        choices = ranked_choices(req, self.candidate_set(req.profile), held, limit)
        return [self._on_workers(req, c, held, spread_spare=True) for c in choices]

    def plan(self, req: PlanRequest) -> Plan:
        start = time.perf_counter()
        choice = self._solve(req, self.candidate_set(req.profile))
        solve_ms = (time.perf_counter() - start) * 1e3
        if choice is None:
            return throughput_fallback(req, self.name, solve_ms, self._fallback_models(req.profile))
        return assemble_plan(
            req,
            self.name,
            choice.candidate,
            choice.batch,
            choice.gpus,
            feasible=True,
            solve_ms=solve_ms,
        )


@dataclass(frozen=True)
class HadisOptions:
    table: TableChoice = "full"
    include_single_models: bool = True
    per_pair: bool = False
    solver: str = DEFAULT_SOLVER


@dataclass(frozen=True)
class DiffServeOptions:
    pair: tuple[str, str] | None = None  # default: the paper's (fastest, best) pair
    solver: str = DEFAULT_SOLVER


@register("hadis", options=HadisOptions)
class HadisPolicy(_CascadePolicy):
    """Router + discriminator cascade over every pair in the table, chosen by one MILP.

    table: 'full' uses every row; 'pareto' the (latency, quality) front; 'pareto-adjacent'
    the front over adjacent pairs (the paper's 49-row-style table).
    per_pair: solve one MILP per pair instead of one over all (same optimum; for measuring).
    solver: 'milp' (HiGHS) or 'enumerate' (same optimum, no solver; see planner/milp.py).
    """

    def __init__(
        self,
        table: TableChoice = "full",
        include_single_models: bool = True,
        per_pair: bool = False,
        solver: str = DEFAULT_SOLVER,
    ) -> None:
        super().__init__(solver)
        if table not in TABLE_CHOICES:
            raise HadisError(f"unknown table {table!r}; valid: {', '.join(TABLE_CHOICES)}")
        self.table = table
        self.include_single_models = include_single_models
        self.per_pair = per_pair
        self._pair_sets: tuple[CandidateSet, list[CandidateSet]] | None = None

    def _candidates_key(self, profile: Profile) -> Hashable:
        return ("hadis", self.table, self.include_single_models)

    def _build_candidates(self, profile: Profile) -> list[Candidate]:
        if self.table == "full":
            rows = list(profile.configs)
        else:
            rows = pareto_table(profile, adjacent_only=self.table == "pareto-adjacent")
        return build_candidates(profile, rows, include_single_models=self.include_single_models)

    def _solve(self, req: PlanRequest, cs: CandidateSet) -> Choice | None:
        if not self.per_pair:
            return super()._solve(req, cs)
        metric = req.profile.metric
        best: Choice | None = None
        if self._pair_sets is None or self._pair_sets[0] is not cs:
            pairs = dict.fromkeys(c.pair for c in cs.candidates)
            self._pair_sets = (
                cs,
                [
                    CandidateSet.build(req.profile, [c for c in cs.candidates if c.pair == p])
                    for p in pairs
                ],
            )
        for sub in self._pair_sets[1]:
            choice = super()._solve(req, sub)
            if choice is not None and (
                best is None or metric.better(choice.candidate.quality, best.candidate.quality)
            ):
                best = choice
        return best


def diffserve_pair(profile: Profile) -> tuple[str, str]:
    """DiffServe's fixed pair: the second-fastest and the slowest model (models 1 and 3 of
    the paper pool; with two models, the fastest and the slowest) when the table has
    discriminator-only (r = 0) rows for it; otherwise, of the pairs that have such rows,
    the one with the slowest heavy model, then the fastest light one."""
    order = [m.name for m in sorted(profile.models, key=lambda m: m.latency_s[1])]
    preferred = (order[1] if len(order) >= 3 else order[0], order[-1])
    with_rows = {c.pair for c in profile.configs if c.r == 0}
    if preferred in with_rows:
        return preferred
    if not with_rows:
        raise HadisError(
            f"diffserve needs discriminator-only rows (r = 0) for some pair; profile "
            f"{profile.name!r} has none"
        )
    rank = {name: i for i, name in enumerate(order)}
    return max(with_rows, key=lambda p: (rank[p[1]], -rank[p[0]]))


@register("diffserve", options=DiffServeOptions)
class DiffServePolicy(_CascadePolicy):
    """DiffServe: discriminator-only cascade (r = 0) pinned to one pair; the MILP picks GPUs,
    batch sizes and the threshold d for the best quality (not the largest threshold)."""

    def __init__(self, pair: tuple[str, str] | None = None, solver: str = DEFAULT_SOLVER) -> None:
        super().__init__(solver)
        self.pair = pair

    def _candidates_key(self, profile: Profile) -> Hashable:
        return ("diffserve", self._pair(profile))

    def _pair(self, profile: Profile) -> tuple[str, str]:
        return tuple(self.pair) if self.pair else diffserve_pair(profile)  # type: ignore[return-value]

    def _build_candidates(self, profile: Profile) -> list[Candidate]:
        pair = self._pair(profile)
        rows = [c for c in profile.configs if c.pair == pair and c.r == 0]
        if not rows:
            raise HadisError(f"profile {profile.name!r} has no r = 0 rows for pair {pair}")
        return [from_row(c) for c in rows]

    def _fallback_models(self, profile: Profile) -> Sequence[str]:
        return (self._pair(profile)[0],)
