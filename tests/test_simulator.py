import math

import numpy as np
import pytest

from hadis.engine import DIRECT, ESCALATED, SERVED, QualityTable
from hadis.planner import HadisPolicy, PlanRequest
from hadis.sim.experiment import PAPER_POLICIES, run_policies
from hadis.sim.oracle import oracle_reference
from hadis.sim.simulator import SimConfig, simulate
from hadis.sim.trace import azure_functions, constant, step


@pytest.fixture(scope="module")
def short_trace():
    # the first 700 s of the paper workload
    t = azure_functions(seed=0)
    keep = t.arrival_s < 700
    return type(t)(t.arrival_s[keep], t.prompt_id[keep], name="short")


def test_same_seed_same_numbers(paper_profile, short_trace):
    a = simulate(paper_profile, short_trace, "hadis", SimConfig(seed=5, latency_noise=0.1))
    b = simulate(paper_profile, short_trace, "hadis", SimConfig(seed=5, latency_noise=0.1))
    c = simulate(paper_profile, short_trace, "hadis", SimConfig(seed=6, latency_noise=0.1))
    assert a.summary == b.summary
    assert a.summary != c.summary


@pytest.mark.parametrize("policy", PAPER_POLICIES[:-1])
def test_conservation_for_every_policy(paper_profile, short_trace, policy):
    run = simulate(paper_profile, short_trace, policy, SimConfig())
    ids = sorted(q.qid for q in run.recorder.queries)
    assert ids == list(range(len(short_trace)))
    s = run.summary
    assert s.served + s.dropped == s.queries == len(short_trace)
    assert s.violation_ratio == pytest.approx((s.late + s.dropped) / s.queries)


def _models_used(run):
    return {b[1] for b in run.recorder.batches}


def test_baselines_defining_behaviour(paper_profile, short_trace):
    light = simulate(paper_profile, short_trace, "clipper-light", SimConfig())
    assert _models_used(light) == {"sdxl-lightning"}
    assert light.summary.quality == pytest.approx(29.76)

    heavy = simulate(paper_profile, short_trace, "clipper-heavy", SimConfig())
    assert _models_used(heavy) == {"sd35-large"}
    served = [q for q in heavy.recorder.queries if q.status == SERVED]
    assert all(q.finish_s - q.arrival_s <= 60.0 + 1e-9 for q in served)  # admits only in time
    assert heavy.summary.dropped > 0

    diff = simulate(paper_profile, short_trace, "diffserve", SimConfig())
    assert _models_used(diff) <= {"sd35-large-turbo", "sd35-large"}
    assert diff.summary.paths[DIRECT] == 0 and diff.summary.paths[ESCALATED] > 0

    prot = simulate(paper_profile, short_trace, "proteus", SimConfig())
    assert prot.summary.paths[ESCALATED] == 0  # no cascade: a random split
    assert len(_models_used(prot)) >= 2

    inf = simulate(paper_profile, short_trace, "infaas-acc", SimConfig())
    for _, plan in inf.recorder.plans:
        assert len(plan.gpus) == 1  # one variant at a time

    had = simulate(paper_profile, short_trace, "hadis", SimConfig())
    assert had.summary.paths[DIRECT] > 0 and had.summary.paths[ESCALATED] > 0


def test_switch_delay_and_idle_gpus_are_modelled(paper_profile):
    trace = step([(0.5, 300), (4.0, 300)], seed=1)
    slow = simulate(paper_profile, trace, "hadis", SimConfig(switch_delay_s=30.0))
    fast = simulate(paper_profile, trace, "hadis", SimConfig(switch_delay_s=0.0))
    # warm start: the first plan's models are loaded before traffic, as in a live server
    assert min(start for *_, start, _end in slow.recorder.batches) < 5.0
    assert min(start for *_, start, _end in fast.recorder.batches) < 5.0
    assert slow.summary.plan_changes > 0
    # a worker that moves to another model serves nothing for the switch delay
    last: dict[int, tuple[str, float]] = {}
    gaps = []
    for w, m, _n, start, end in sorted(slow.recorder.batches, key=lambda b: b[3]):
        if w in last and last[w][0] != m:
            gaps.append(start - last[w][1])
        last[w] = (m, end)
    assert gaps and min(gaps) >= 30.0 - 1e-9
    # under the first plan only its models run, on at most its number of workers
    (_, first), (t1, _) = slow.recorder.plans[0], slow.recorder.plans[1]
    early = [(w, m) for w, m, _n, start, _end in slow.recorder.batches if start < t1]
    assert early and {m for _, m in early} <= set(first.gpus)
    assert len({w for w, _ in early}) <= sum(first.gpus.values())


def test_oracle_is_the_planner_optimum_per_window(paper_profile):
    trace = constant(3.0, 500.0, seed=2)
    bound = oracle_reference(paper_profile, trace, gpus=16, slo_s=60.0)
    policy = HadisPolicy()
    for w in bound.windows:
        plan = policy.plan(PlanRequest(paper_profile, 16, 60.0, w.demand_qps, overprovision=1.0))
        assert w.quality == pytest.approx(plan.quality)
    assert bound.violation_ratio == 0.0


def test_quality_table_lookup(paper_profile):
    table = QualityTable(paper_profile)
    row = next(
        c
        for c in paper_profile.configs
        if c.pair == ("sd35-medium", "sd35-large") and c.r == 0.2 and c.d == 0.5
    )
    assert table.pair_quality(row.pair, 0.2, 0.5) == pytest.approx(row.quality)
    # between grid points: between the neighbours
    q = table.pair_quality(row.pair, 0.25, 0.5)
    lo = table.pair_quality(row.pair, 0.2, 0.5)
    hi = table.pair_quality(row.pair, 0.3, 0.5)
    assert min(lo, hi) <= q <= max(lo, hi)
    # 8 light, 1 direct, 1 escalated: r = 0.1, d = 1/9
    g = table.group_quality(row.pair, 8, 1, 1)
    assert g == pytest.approx(table.pair_quality(row.pair, 0.1, 1 / 9))
    assert table.group_quality(("sd35-large",), 5, 0, 0) == 19.95


@pytest.mark.slow
def test_paper_experiment_acceptance(paper_profile):
    """HADIS against every baseline on the paper's workload (the README's table)."""
    trace = azure_functions(1.0, 6.4, 10.0, seed=0)
    s, _ = run_policies(paper_profile, trace, PAPER_POLICIES, SimConfig(seed=0))
    h = s["hadis"]
    # both 0 since plans count half a batch's wait for the one in progress (DiffServe had
    # 0.0013 without it, HADIS 0.0001)
    assert h.violation_ratio <= s["diffserve"].violation_ratio
    assert h.violation_ratio <= 0.001
    assert h.quality <= s["diffserve"].quality - 1.0
    assert h.quality <= s["oracle"].quality * 1.03  # FID: within 3% of the fluid reference
    for name in ("proteus", "infaas-acc", "clipper-light"):
        assert h.quality < s[name].quality  # better quality ...
        assert h.violation_ratio <= s[name].violation_ratio + 0.001  # ... at ~equal SLO
    assert h.violation_ratio < s["clipper-heavy"].violation_ratio / 100
    assert not math.isnan(h.quality)
    assert np.isclose(s["oracle"].quality, 23.14, atol=0.2)


@pytest.mark.slow
def test_slow_model_switches_do_not_collapse_hadis(paper_profile):
    """With model loads as long as the SLO (60 s), plans keep capacity in reserve for the
    switches a re-plan causes (Controller.overprovision), lean towards bursts, and a plan
    that loads models is adopted only if its queries keep the SLO meanwhile: HADIS used to
    collapse here (violation ratio 0.87 without the first two, 0.0019 without the last)."""
    trace = azure_functions(1.0, 6.4, 10.0, seed=0)
    s, _ = run_policies(
        paper_profile, trace, ("hadis", "diffserve"), SimConfig(seed=0, switch_delay_s=60.0)
    )
    # measured: HADIS 0 / 24.93, DiffServe 0 / 25.18
    assert s["hadis"].violation_ratio <= s["diffserve"].violation_ratio + 0.0005
    assert s["hadis"].quality < s["diffserve"].quality


def test_the_control_loop_runs_while_work_remains_after_the_last_arrival(paper_profile):
    """A burst at the very end of a trace meets a plan made for the calm: the controller
    keeps ticking while batches run (as a live server's loop does), so the burst's backlog
    still gets an early re-plan after the last arrival, and the run ends when the work
    does, every query with an outcome."""
    trace = step([(0.3, 400.0), (8.0, 8.0)], seed=3)
    run = simulate(paper_profile, trace, "hadis", SimConfig())
    last = float(trace.arrival_s[-1])
    after = [
        reason
        for (t, _plan), reason in zip(run.recorder.plans, run.recorder.reasons, strict=True)
        if t > last
    ]
    assert "backlog" in after
    s = run.summary
    assert s.served + s.dropped == len(trace)
