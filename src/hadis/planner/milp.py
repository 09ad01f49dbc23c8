"""The HADIS planning MILP (scipy.optimize.milp / HiGHS), one MILP over all pairs.

Variables: y_k (choose candidate k), z_mb (model m runs batch size b), x_mb (GPUs of model m
at batch b). Constraints:
  sum_k y_k = 1;  sum_b z_mb = 1;  x_mb <= G z_mb;  sum x <= G
  capacity:  sum_b x_mb * b / L_m(b) >= D * sum_k share_m(k) y_k     (D includes the margin)
  latency:   batch sizes with L_m(b) + Q_m > SLO are removed up front (single-model paths);
             for a pair with escalation, L_l(b_l) + Q_l + L_h(b_h) + Q_h <= SLO whenever one
             of its escalating candidates is chosen (big-M)
  cut:       sum_k g_k y_k <= G with g_k the fewest GPUs candidate k needs at its best batch
             sizes (valid for every integer solution; it tightens the LP relaxation)
Exact reductions before solving (planner/screen.py): batch sizes beaten on latency and
throughput by another are dropped, so are candidates that cannot fit in G GPUs alone, and
so are those a better-quality candidate beats on GPUs needed.
Since one candidate is chosen, the problem decomposes per candidate: `solve_enumerate`
takes the best screened candidate directly and gives the same optimum without a solver.
Objective: best quality, then (tiny weights) lower expected latency, faster batches and
fewer GPUs. docs/planner.md has the measured alternatives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hadis.core.plan import PlanRequest
from hadis.planner.candidates import Candidate
from hadis.planner.screen import CandidateSet, Screened, screen

_EPS_LATENCY = 1e-7
_EPS_GPU = 1e-6
_MIP_GAP = 1e-5  # qualities differ by >= 0.01 at FID ~20: 2e-4 absolute is far below
_EPS_BATCH = 1e-8  # among equals, prefer the smaller (faster) batch


@dataclass(frozen=True, slots=True)
class Choice:
    """A solved assignment: candidate, batch size and GPUs per model it loads."""

    candidate: Candidate
    batch: dict[str, int]
    gpus: dict[str, int]


def choice_from_screen(cs: CandidateSet, sc: Screened, k: int, req: PlanRequest) -> Choice:
    """The screened batch sizes and fewest GPUs of candidate k."""
    cand = cs.candidates[k]
    batch: dict[str, int] = {}
    gpus: dict[str, int] = {}
    for j, name in enumerate(cs.models):
        if cs.share[k, j] > 0:
            b = int(sc.batch[k, j])
            batch[name] = b
            cap = req.profile.model(name).capacity_qps(b)
            gpus[name] = int(np.ceil(req.target_qps * cs.share[k, j] / cap - 1e-9))
    return Choice(cand, batch, gpus)


def front(ok: np.ndarray, cost: np.ndarray, need: np.ndarray) -> np.ndarray:
    """Feasible candidates on the (quality, GPUs needed) front: the rest cannot be optimal."""
    order = ok[np.lexsort((need[ok], cost[ok]))]
    kept, fewest = [], np.inf
    for k in order:
        if need[k] < fewest:
            kept.append(k)
            fewest = need[k]
    return np.array(kept, dtype=int)


def solve_enumerate(req: PlanRequest, cs: CandidateSet) -> Choice | None:
    """Exact optimum without a solver: the best screened candidate that fits."""
    sc = screen(req, cs)
    ok = sc.feasible(req.gpus)
    if ok.size == 0:
        return None
    k = ok[np.lexsort((sc.need[ok], cs.latency_s[ok], cs.cost[ok]))[0]]
    return choice_from_screen(cs, sc, int(k), req)


def solve_milp(req: PlanRequest, cs: CandidateSet) -> Choice | None:
    """Best-quality feasible choice among the candidates, or None when none is feasible."""
    from scipy.optimize import LinearConstraint, milp  # here: importing hadis stays light

    sc = screen(req, cs)
    ok = sc.feasible(req.gpus)
    if ok.size == 0:
        return None
    ok = front(ok, cs.cost, sc.need)
    profile, G, D = req.profile, req.gpus, req.target_qps
    cands = [cs.candidates[k] for k in ok]
    need = sc.need[ok]
    share_all = cs.share[ok]
    used_models = [j for j in range(len(cs.models)) if share_all[:, j].any()]
    models = [cs.models[j] for j in used_models]
    share = share_all[:, used_models].T  # (M, K)
    batches = sc.options
    zb = [(m, b) for m in models for b in batches[m]]
    n_y, n_z = len(cands), len(zb)
    z0, x0, n = n_y, n_y + n_z, n_y + 2 * n_z
    lat = np.array([profile.model(m).batch_latency_s(b) for m, b in zb])
    cap = np.array([profile.model(m).capacity_qps(b) for m, b in zb])
    of_model = np.array([[mm == m for mm, _ in zb] for m in models], dtype=float)

    blocks: list[np.ndarray] = []
    bounds: list[tuple[float, float]] = []

    def add(row: np.ndarray, lo: float, hi: float) -> None:
        blocks.append(row)
        bounds.append((lo, hi))

    row = np.zeros(n)
    row[:n_y] = 1
    add(row, 1, 1)
    row = np.zeros(n)
    row[:n_y] = need
    add(row, -np.inf, G)
    row = np.zeros(n)
    row[x0:] = 1
    add(row, -np.inf, G)
    for i in range(len(models)):
        row = np.zeros(n)
        row[z0:x0] = of_model[i]
        add(row, 1, 1)
        row = np.zeros(n)
        row[x0:] = of_model[i] * cap
        row[:n_y] = -D * share[i]
        add(row, 0, np.inf)
    for j in range(n_z):
        row = np.zeros(n)
        row[x0 + j] = 1
        row[z0 + j] = -G
        add(row, -np.inf, 0)
    for light, heavy in sorted({(c.light, c.heavy) for c in cands if c.escalates}):
        on_pair = np.array([mm in (light, heavy) for mm, _ in zb])
        q = req.queue_delay_s(light) + req.queue_delay_s(heavy)
        big_m = req.batch_factor * lat[on_pair].max() * 2 + q
        row = np.zeros(n)
        row[z0:x0] = np.where(on_pair, req.batch_factor * lat, 0.0)
        row[:n_y] = [big_m if c.escalates and c.pair == (light, heavy) else 0 for c in cands]
        add(row, -np.inf, req.slo_s - q + big_m)

    cost = np.zeros(n)
    cost[:n_y] = cs.cost[ok] + _EPS_LATENCY * cs.latency_s[ok]
    cost[z0:x0] = _EPS_BATCH * lat
    cost[x0:] = _EPS_GPU
    lo, hi = zip(*bounds, strict=True)
    res = milp(
        cost,
        integrality=np.ones(n),
        bounds=(np.zeros(n), np.concatenate([np.ones(n_y + n_z), np.full(n_z, G)])),
        constraints=LinearConstraint(np.vstack(blocks), lo, hi),
        options={"mip_rel_gap": _MIP_GAP},
    )
    if res.x is None:
        return None
    x = np.rint(res.x).astype(int)
    cand = cands[int(np.argmax(x[:n_y]))]
    batch = {m: b for j, (m, b) in enumerate(zb) if x[z0 + j] and m in cand.models}
    gpus = {m: 0 for m in cand.models}
    for j, (m, _) in enumerate(zb):
        if m in gpus:
            gpus[m] += int(x[x0 + j])
    return Choice(cand, batch, gpus)
