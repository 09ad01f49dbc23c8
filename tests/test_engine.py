import pytest

from hadis.engine import (
    DIRECT,
    DROPPED,
    ESCALATED,
    LIGHT,
    SERVED,
    Engine,
    EngineConfig,
    MetricsRecorder,
)
from tests.conftest import make_profile
from tests.engine_helpers import TableDiscriminator, TableRouter, drive, make_plan


@pytest.fixture
def pool():
    # m0: 1 s per image, m1: 4 s per image; batches follow 0.9 * b * L(1)
    return make_profile([1.0, 4.0], [30.0, 20.0], lambda i, j, r, d: 25.0)


def engine_for(pool, workers=1, slo=10.0, router=None, disc=None, switch=0.0, **kw):
    rec = MetricsRecorder()
    eng = Engine(
        pool,
        workers,
        EngineConfig(slo_s=slo, switch_delay_s=switch, **kw),
        router or TableRouter([0.0] * 10),
        disc or TableDiscriminator([1.0] * 10),
        rec,
    )
    return eng, rec


def test_single_worker_fifo_exact_finish_times(pool):
    eng, rec = engine_for(pool)
    plan = make_plan({"m0": 1}, {"m0": 1}, "m0")
    qs = drive(eng, [(0.0, 0), (0.5, 1), (0.6, 2)], plans=[(0.0, plan)])
    assert [q.start_s for q in qs] == [0.0, 1.0, 2.0]
    assert [q.finish_s for q in qs] == [1.0, 2.0, 3.0]
    assert all(q.status == SERVED and q.path == LIGHT for q in qs)


def test_greedy_batching_takes_what_is_queued(pool):
    eng, rec = engine_for(pool)
    plan = make_plan({"m0": 1}, {"m0": 4}, "m0")
    qs = drive(eng, [(0.0, 0), (0.1, 1), (0.2, 2), (0.3, 3)], plans=[(0.0, plan)])
    # q0 runs alone (no waiting), then q1..q3 together: 0.9 * 3 * 1 s = 2.7 s
    assert qs[0].finish_s == pytest.approx(1.0)
    assert [q.finish_s for q in qs[1:]] == pytest.approx([3.7] * 3)
    assert [b[2] for b in rec.batches] == [1, 3]


def test_late_queries_are_dropped_before_execution(pool):
    eng, rec = engine_for(pool, slo=2.0)  # drop if est. finish > 1.5 * 2 = 3 s after arrival
    plan = make_plan({"m0": 1}, {"m0": 1}, "m0")
    qs = drive(eng, [(0.0, 0), (0.0, 1), (0.0, 2), (0.0, 3)], plans=[(0.0, plan)])
    # q0 finishes at 1, q1 at 2, q2 at 3 (late: > SLO 2 s but within 3 s), q3 would end at 4
    assert [q.status for q in qs] == [SERVED, SERVED, SERVED, DROPPED]
    assert qs[3].drop_reason == "late" and qs[3].finish_s == 3.0
    assert qs[2].finish_s - qs[2].arrival_s > 2.0  # served but late


def test_router_sends_top_r_to_heavy_and_discriminator_escalates_bottom_d(pool):
    router = TableRouter([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    disc = TableDiscriminator([0.9, 0.8, 0.1, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.05])
    eng, rec = engine_for(pool, workers=2, slo=100.0, router=router, disc=disc)
    # r = 0.1: prompt 9 (score 9) goes straight to heavy; d = 0.2: the two lowest
    # confidences among the reference (0.05 and 0.1) are escalated, i.e. prompt 2 here
    plan = make_plan({"m0": 1, "m1": 1}, {"m0": 1, "m1": 1}, "m0", "m1", r=0.1, d=0.2)
    qs = drive(eng, [(0.0, 9), (0.0, 2), (0.0, 0)], plans=[(0.0, plan)])
    by_prompt = {q.prompt_id: q for q in qs}
    assert by_prompt[9].path == DIRECT and by_prompt[9].finish_s == pytest.approx(4.0)
    assert by_prompt[2].path == ESCALATED
    # light at [0,1], then waits for heavy (busy with q9 until 4): finishes at 8
    assert by_prompt[2].finish_s == pytest.approx(8.0)
    assert by_prompt[0].path == LIGHT and by_prompt[0].finish_s == pytest.approx(2.0)
    assert by_prompt[2].confidence == pytest.approx(0.1)


def test_escalated_query_goes_before_later_direct_heavy(pool):
    router = TableRouter([0.0, 0.0, 9.0, 9.0])
    disc = TableDiscriminator([0.0, 1.0, 1.0, 1.0])
    eng, _ = engine_for(pool, workers=2, slo=100.0, router=router, disc=disc)
    plan = make_plan({"m0": 1, "m1": 1}, {"m0": 1, "m1": 1}, "m0", "m1", r=0.5, d=0.25)
    # q0 (prompt 0) escalates at t=1; q1 (direct) holds the heavy worker 0..4; q2 (direct)
    # arrived at 0.5, after q0, so earliest-deadline-first runs q0 before q2
    qs = drive(eng, [(0.0, 0), (0.0, 2), (0.5, 3)], plans=[(0.0, plan)])
    assert qs[0].path == ESCALATED
    assert qs[0].finish_s == pytest.approx(8.0)  # heavy free at 4, q0 (arrived 0) first
    assert qs[2].finish_s == pytest.approx(12.0)


def test_plan_change_switches_workers_with_delay(pool):
    eng, rec = engine_for(pool, workers=1, switch=3.0)
    first = make_plan({"m0": 1}, {"m0": 1}, "m0")
    second = make_plan({"m1": 1}, {"m1": 1}, "m1")
    qs = drive(eng, [(0.0, 0), (5.0, 1)], plans=[(0.0, first), (0.5, second)])
    # loading m0 takes 0..3; the plan moved to m1 at 0.5, so the worker then loads m1
    # (3..6); q0 migrated to m1's queue and runs 6..10, q1 runs 10..14
    assert [q.model for q in qs] == ["m1", "m1"]
    assert [q.start_s for q in qs] == pytest.approx([6.0, 10.0])
    assert [q.finish_s for q in qs] == pytest.approx([10.0, 14.0])
    assert eng.workers[0].loaded == "m1"


def test_busy_worker_switches_after_its_batch(pool):
    eng, rec = engine_for(pool, workers=1, switch=2.0)
    first = make_plan({"m0": 1}, {"m0": 1}, "m0")
    second = make_plan({"m1": 1}, {"m1": 1}, "m1")
    qs = drive(eng, [(2.0, 0), (2.5, 1)], plans=[(0.0, first), (2.5, second)])
    # m0 loaded at 2; q0 runs 2..3 on m0 (not interrupted); q1 migrates to m1; the worker
    # loads m1 3..5 and runs q1 5..9
    assert (qs[0].model, qs[0].finish_s) == ("m0", pytest.approx(3.0))
    assert (qs[1].model, qs[1].start_s, qs[1].finish_s) == ("m1", 5.0, 9.0)


def test_unused_workers_go_idle_and_get_no_traffic(pool):
    eng, rec = engine_for(pool, workers=3)
    plan = make_plan({"m0": 1}, {"m0": 1}, "m0")
    drive(eng, [(t * 0.1, 0) for t in range(20)], plans=[(0.0, plan)])
    used = {b[0] for b in rec.batches}
    assert len(used) == 1
    idle = [w.wid for w in eng.workers if w.assigned is None]
    assert len(idle) == 2 and not used & set(idle)


def test_orphaned_queue_migrates_to_new_plan(pool):
    eng, rec = engine_for(pool, workers=1)
    first = make_plan({"m0": 1}, {"m0": 1}, "m0")
    second = make_plan({"m1": 1}, {"m1": 1}, "m1")
    qs = drive(eng, [(0.0, 0), (0.0, 1), (0.0, 2)], plans=[(0.0, first), (0.5, second)])
    assert all(q.status == SERVED for q in qs)
    assert [q.model for q in qs] == ["m0", "m1", "m1"]


def test_split_plan_routes_by_weights(pool):
    eng, rec = engine_for(pool, workers=4, slo=1000.0, seed=3)
    plan = make_plan({"m0": 2, "m1": 2}, {"m0": 1, "m1": 1}, "m0", split={"m0": 0.75, "m1": 0.25})
    qs = drive(eng, [(t * 0.5, 0) for t in range(400)], plans=[(0.0, plan)])
    share = sum(q.model == "m1" for q in qs) / len(qs)
    assert 0.18 < share < 0.32
    # a random split over a table pair is recorded as that pair's router-only mix, so the
    # metrics score it from the pair's d = 0 rows (light: m0, direct-heavy: m1)
    assert all(q.pair == ("m0", "m1") for q in qs)
    assert all(q.path == (LIGHT if q.model == "m0" else DIRECT) for q in qs)


def test_conservation_every_query_ends_once(pool):
    router = TableRouter([float(i) for i in range(10)])
    disc = TableDiscriminator([i / 10 for i in range(10)])
    eng, rec = engine_for(pool, workers=3, slo=6.0, router=router, disc=disc, switch=1.0)
    plans = [
        (0.0, make_plan({"m0": 2, "m1": 1}, {"m0": 2, "m1": 1}, "m0", "m1", r=0.3, d=0.3)),
        (20.0, make_plan({"m0": 3}, {"m0": 4}, "m0")),
        (40.0, make_plan({"m0": 1, "m1": 2}, {"m0": 1, "m1": 2}, "m0", "m1", r=0.5, d=0.5)),
    ]
    arrivals = [(t * 0.3, t % 10) for t in range(200)]
    qs = drive(eng, arrivals, plans=plans)
    eng.drain(1e9)
    ids = [q.qid for q in rec.queries]
    assert sorted(ids) == list(range(200))  # each exactly once
    assert all(q.status in (SERVED, DROPPED) for q in qs)
    assert any(q.status == DROPPED for q in qs)  # overloaded on purpose


def test_submit_without_plan_is_an_error(pool):
    eng, _ = engine_for(pool)
    from hadis.engine import Query

    with pytest.raises(ValueError, match="no plan"):
        eng.submit(0.0, Query(0, 0.0, 0))


def _dispatches(cmds):
    from hadis.engine import Dispatch

    return [c for c in cmds if isinstance(c, Dispatch)]


def test_a_lost_workers_batch_goes_back_to_the_queue_and_is_served_elsewhere(pool):
    from hadis.engine import Query

    eng, rec = engine_for(pool, workers=2)
    wakeups = eng.apply_plan(0.0, make_plan({"m0": 2}, {"m0": 2}, "m0"))
    qs = [Query(i, 0.0, i) for i in range(4)]
    for q in qs:  # queued while the workers load m0
        eng.submit(0.0, q)
    cmds = [c for w in wakeups for c in eng.worker_ready(0.0, w.worker)]
    first, second = _dispatches(cmds)  # both workers run a batch of 2
    assert eng.live_workers() == 2
    again = _dispatches(eng.worker_lost(0.5, first.worker))
    assert eng.live_workers() == 1 and not eng.workers[first.worker].alive
    assert again == []  # the other worker is busy: the lost batch waits in the queue
    assert all(q.status == "pending" for q in first.queries)
    retry = _dispatches(eng.batch_done(1.8, second.worker))
    assert [q.qid for q in retry[0].queries] == [q.qid for q in first.queries]
    assert retry[0].worker == second.worker
    eng.batch_done(3.6, second.worker)
    assert all(q.status == SERVED for q in qs) and len(rec.queries) == 4
    assert all(q.arrival_s == 0.0 for q in first.queries)  # original deadlines kept
    assert eng.enqueued["m0"] == 4  # a requeue is not a new arrival
    # back: the plan in force wants 2 workers, so it gets its place again at once
    eng.worker_back(4.0, first.worker)
    assert eng.workers[first.worker].assigned == "m0" and eng.live_workers() == 2


def test_a_failed_batch_is_retried_once_then_ends_with_the_error(pool):
    from hadis.engine import Query

    eng, rec = engine_for(pool, workers=2, max_retries=1)
    for w in eng.apply_plan(0.0, make_plan({"m0": 2}, {"m0": 1}, "m0")):
        eng.worker_ready(0.0, w.worker)
    q = Query(0, 0.0, 0)
    (first,) = _dispatches(eng.submit(0.0, q))
    (retry,) = _dispatches(eng.fail_batch(0.1, first.worker, "CUDA error"))
    assert retry.worker != first.worker  # a retry prefers another worker
    assert q.status == "pending" and q.failures == 1
    eng.fail_batch(0.2, retry.worker, "CUDA error")
    assert q.status == DROPPED and q.drop_reason == "generation failed"
    assert q.drop_detail == "CUDA error" and rec.queries == [q]


def test_the_controller_replans_for_the_workers_alive(paper_profile):
    from hadis.engine import Controller
    from hadis.planner import get_policy

    eng = Engine(
        paper_profile, 8, EngineConfig(slo_s=60.0), TableRouter([0.0] * 10),
        TableDiscriminator([1.0] * 10),
    )  # fmt: skip
    ctl = Controller(eng, get_policy("hadis"), 8)
    ctl.start(0.0)  # adopts the first plan
    assert sum(ctl.plan.gpus.values()) == 8
    for w in (0, 1, 2):
        eng.worker_lost(1.0, w)
    ctl.workers_changed()
    req = ctl.due(2.0)  # early: long before the period, because workers changed
    assert req is not None and req.gpus == 5 and ctl.reason == "workers"
    plan = ctl.decide(req)
    assert sum(plan.gpus.values()) <= 5
    eng.apply_plan(2.0, plan)
    assert all(w.assigned is None for w in eng.workers[:3])


def test_a_plan_without_light_workers_sends_everything_heavy_whatever_the_router(pool):
    """r = 1 with a router that never says heavy (`--router none`): the light model has no
    workers, so its queue would wait forever; every query goes to heavy instead."""
    from hadis.engine import Query
    from hadis.routing.simple import NoRouter

    eng, _ = engine_for(pool, workers=1, router=NoRouter())
    for w in eng.apply_plan(0.0, make_plan({"m1": 1}, {"m1": 1}, "m0", heavy="m1", r=1.0)):
        eng.worker_ready(0.0, w.worker)
    q = Query(0, 0.0, 0)
    (batch,) = _dispatches(eng.submit(0.0, q))
    assert batch.model == "m1" and q.path == DIRECT


@pytest.mark.parametrize("switch, waits", [(30.0, False), (3.0, True)])
def test_while_the_heavy_model_loads_the_light_one_answers_unless_waiting_keeps_the_slo(
    pool, switch, waits
):
    """A query the router sends to a heavy model whose every worker is still loading is
    answered by the light model when waiting for the load could not keep the SLO (30 s
    load, 10 s SLO); with a 3 s load it waits. Once the heavy model is loaded, it serves."""
    router = TableRouter([float(i) for i in range(10)])
    eng, rec = engine_for(pool, workers=2, switch=switch, router=router)
    light_only = make_plan({"m0": 2}, {"m0": 1}, "m0")
    cascade = make_plan({"m0": 1, "m1": 1}, {"m0": 1, "m1": 1}, "m0", "m1", r=0.5)
    # prompt 9 is in the router's top half; it arrives while m1 loads, and again after
    arrivals = [(switch + 1.0, 9), (switch + 2.0, 9), (3 * switch + 40.0, 9)]
    qs = drive(eng, arrivals, plans=[(0.0, light_only), (switch + 0.5, cascade)])
    assert all(q.status == SERVED for q in qs)
    during = qs[:2]
    assert all(q.path == (DIRECT if waits else LIGHT) for q in during)
    assert all(q.model == ("m1" if waits else "m0") for q in during)
    assert (qs[2].path, qs[2].model) == (DIRECT, "m1")  # loaded by then: it serves


def test_committed_weights_count_workers_moving_whether_loading_or_finishing_a_batch(pool):
    """Per set of weights some worker is moving to, the workers assigned to it: a worker
    still finishing its batch on the old model counts, as one that is loading does."""
    from hadis.core.commands import LoadModel
    from hadis.core.query import Query

    eng, _ = engine_for(pool, workers=2, switch=5.0)
    weights = {m: pool.model(m).weights for m in ("m0", "m1")}
    for c in eng.apply_plan(0.0, make_plan({"m0": 2}, {"m0": 1}, "m0")):
        assert isinstance(c, LoadModel)
        eng.worker_ready(5.0, c.worker)
    assert not eng.committed_weights()  # everything is where the plan wants it
    for i in range(2):  # both workers busy on m0
        eng.submit(6.0, Query(i, 6.0, 0, router_score=0.0))
    assert all(w.busy for w in eng.workers)
    moves = eng.apply_plan(6.5, make_plan({"m0": 1, "m1": 1}, {"m0": 1, "m1": 1}, "m0"))
    assert not any(isinstance(c, LoadModel) for c in moves)  # the mover finishes first
    assert eng.committed_weights() == {weights["m1"]: 1}
    mover = next(w for w in eng.workers if w.assigned == "m1")
    assert mover.loading is None and mover.loaded == "m0"
