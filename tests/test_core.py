"""The driver contract (hadis.core): drivers score, the engine decides; commands say what to
do; snapshots, admission and summaries are plain data."""

from __future__ import annotations

import dataclasses

import pytest

from hadis.core import (
    DIRECT,
    ESCALATED,
    LIGHT,
    Dispatch,
    LoadModel,
    Query,
    RunConfig,
    RunSummary,
    WindowSummary,
)
from hadis.core import config as defaults
from hadis.core.residency import Found, Residency
from hadis.engine import Engine, EngineConfig
from hadis.errors import HadisError
from hadis.serve.admission import check_paths, check_queue
from hadis.serve.service import ServeConfig
from hadis.sim.simulator import SimConfig
from tests.conftest import make_profile
from tests.engine_helpers import TableDiscriminator, TableRouter, make_plan


@pytest.fixture
def pool():
    # m0: 1 s per image, m1: 4 s per image
    return make_profile([1.0, 4.0], [30.0, 20.0], lambda i, j, r, d: 25.0)


@pytest.fixture
def engine(pool):
    # prompt i: router score i/10, confidence i/10 (0 is the hardest prompt)
    eng = Engine(
        pool,
        2,
        EngineConfig(slo_s=60.0),
        TableRouter([i / 10 for i in range(10)]),
        TableDiscriminator([i / 10 for i in range(10)]),
    )
    for c in eng.apply_plan(0.0, make_plan({"m0": 1, "m1": 1}, {"m0": 4, "m1": 4}, "m0", "m1",
                                           r=0.2, d=0.5)):  # fmt: skip
        assert isinstance(c, LoadModel) and c.expected_s == 3.0  # the configured delay
        eng.worker_ready(0.0, c.worker)
    return eng


def test_a_query_the_plan_routes_must_arrive_scored(engine):
    assert engine.routes_by_score
    with pytest.raises(HadisError, match="no router score"):
        engine.submit(0.0, Query(0, 0.0, 5))
    (d,) = engine.submit(0.0, Query(1, 0.0, 9, router_score=0.9))  # top 20%: heavy
    assert d.model == "m1" and d.queries[0].path == DIRECT and not d.score


def test_the_engine_escalates_on_the_confidences_the_driver_hands_back(engine):
    (d,) = engine.submit(0.0, Query(0, 0.0, 1, router_score=0.1))
    assert d.model == "m0" and d.score and d.scored() == [True]
    with pytest.raises(HadisError, match="no confidence"):
        engine.batch_done(1.0, d.worker)  # the driver did not score it
    (up,) = engine.batch_done(1.0, d.worker, [0.05])  # below the cut: escalated
    assert up.model == "m1" and up.queries[0].path == ESCALATED


def test_a_batch_dispatched_unscored_is_served_as_it_is(engine):
    """Dispatched under a plan that does not escalate, finished under one that does: the
    driver was not asked to score it, so the engine does not escalate it."""
    engine.apply_plan(0.0, make_plan({"m0": 1, "m1": 1}, {"m0": 4, "m1": 4}, "m0", "m1"))
    (d,) = engine.submit(0.0, Query(0, 0.0, 1, router_score=0.1))
    assert not d.score
    engine.apply_plan(0.5, make_plan({"m0": 1, "m1": 1}, {"m0": 4, "m1": 4}, "m0", "m1",
                                     r=0.2, d=0.5))  # fmt: skip
    assert engine.batch_done(1.0, d.worker) == []
    assert d.queries[0].path == LIGHT and d.queries[0].status == "served"


def test_the_snapshot_is_a_copy_and_admission_reads_it(engine, pool):
    for i in range(6):
        engine.submit(0.0, Query(i, 0.0, 1, router_score=0.1))
    snap = engine.snapshot(0.0)
    assert snap.queues["m0"] == 5 and snap.free["m0"] == 0  # greedy: 1 runs, 5 wait
    assert [w.status for w in snap.workers] == ["busy", "idle"]
    engine.submit(0.0, Query(6, 0.0, 1, router_score=0.1))
    assert snap.queues["m0"] == 5  # a copy: the engine moved on, the snapshot did not
    assert check_queue(snap, 2, max_queue=6) is not None
    assert check_queue(snap, 1, max_queue=6) is None
    assert snap.wait_s("m1") == 0.0  # a free worker and nothing queued
    # the plan gives no capacity figures: the light queue cannot drain in time
    rejected = check_paths(snap, ["m0"], pool, slo_s=60.0)
    assert rejected is not None and "m0" in str(rejected)
    assert check_paths(snap, ["m1"], pool, slo_s=60.0) is None


def test_simulator_and_server_share_one_run_configuration():
    for cls in (SimConfig, ServeConfig):
        assert issubclass(cls, RunConfig)
        cfg = cls()
        assert cfg.switch_delay_s == defaults.SWITCH_DELAY_S
        assert cfg.drop_factor == defaults.DROP_FACTOR
        assert cfg.replan_period_s == defaults.REPLAN_PERIOD_S
    run = RunConfig(replan_period_s=5.0, initial_demand_qps=None)
    ctl = run.controller_config(2.5)
    assert ctl.check_s == 5.0 and ctl.initial_demand_qps == 2.5  # cut to the period
    # a backlog of BACKLOG_FRACTION x SLO is looked for as often: short SLOs tick faster
    assert RunConfig(slo_s=60.0).controller_config().check_s == defaults.CHECK_S
    assert RunConfig(slo_s=5.0).controller_config().check_s == pytest.approx(
        defaults.BACKLOG_FRACTION * 5.0
    )
    assert RunConfig(slo_s=5.0, check_s=4.0).controller_config().check_s == 4.0
    assert run.engine_config(max_retries=3).max_retries == 3
    with pytest.raises(HadisError):
        SimConfig(switch_delay_s=-1.0)


def test_run_summary_json_forms():
    window = WindowSummary(0.0, 10, 0.2, 9.5, 0.5, 0, 0.05, 23.0, None, {"a": 2}, "a")
    fluid = RunSummary("oracle", queries=10, served=10, windows=[window], fluid_reference=True)
    out = fluid.to_dict()
    assert out["fluid_reference"] and "paths" not in out and "plan_changes" not in out
    assert "utilisation" not in out["windows"][0]
    failed = RunSummary.failed("diffserve", "no discriminator-only rows")
    assert failed.to_dict() == {"policy": "diffserve", "error": "no discriminator-only rows"}
    sim = dataclasses.replace(fluid, fluid_reference=False, policy="hadis")
    assert "http_status" not in sim.to_dict() and sim.to_dict()["paths"] == {}


def test_dispatch_names_the_images_to_score():
    light = Query(0, 0.0, 1)
    pinned = Query(1, 0.0, 1, pinned="m0")
    direct = Query(2, 0.0, 1)
    direct.path = DIRECT
    assert Dispatch(0, "m0", [light, pinned, direct], score=True).scored() == [
        True,
        False,
        False,
    ]
    assert Dispatch(0, "m0", [light], score=False).scored() == [False]


def test_a_switch_is_expected_to_take_the_models_load_or_reload_time(pool):
    """LoadModel.expected_s: the profile's load time from disk, its reload time when the
    worker keeps the model in host memory (the last one it held), the configured switch
    delay where the profile measured nothing."""
    models = tuple(
        dataclasses.replace(m, load_s=load, reload_s=reload)
        for m, (load, reload) in zip(pool.models, [(20.0, 2.0), (40.0, None)], strict=True)
    )
    timed = dataclasses.replace(pool, models=models)

    def switches(profile, host_cache):
        eng = Engine(profile, 1, EngineConfig(slo_s=60.0, switch_delay_s=3.0,
                                              host_cache=host_cache),
                     TableRouter([0.0] * 10), TableDiscriminator([1.0] * 10))  # fmt: skip
        out = []
        for t, model in enumerate(["m0", "m1", "m0", "m1"]):
            (load,) = eng.apply_plan(float(t), make_plan({model: 1}, {model: 1}, model))
            assert isinstance(load, LoadModel) and load.model == model
            out.append(load.expected_s)
            eng.worker_ready(float(t), load.worker)
        return out, eng.switch_s

    assert switches(timed, 1) == ([20.0, 40.0, 2.0, 40.0], 40.0)  # m1 has no reload time
    assert switches(timed, 0) == ([20.0, 40.0, 20.0, 40.0], 40.0)  # nothing kept in host
    assert switches(pool, 1) == ([3.0, 3.0, 3.0, 3.0], 3.0)  # unmeasured: the delay


def _sized(pool, memory_gib, device_memory_gib, loads=(20.0, 40.0), reload_s=2.0):
    """`pool` with per-model weights memory, load and reload times, and device memory."""
    models = tuple(
        dataclasses.replace(m, memory_gib=mem, load_s=load, reload_s=reload_s)
        for m, mem, load in zip(pool.models, memory_gib, loads, strict=True)
    )
    return dataclasses.replace(pool, models=models, device_memory_gib=device_memory_gib)


def test_residency_keeps_what_fits_on_the_device_and_the_rest_in_host_memory(pool):
    """The active model first; the others stay on the device while their memory fits,
    the least recently used leave first (to host memory, at most host_cache)."""
    three = make_profile([1.0, 2.0, 4.0], [30.0, 25.0, 20.0], lambda i, j, r, d: 25.0)
    m0, m1, m2 = three.models
    sized = dataclasses.replace(
        three,
        models=tuple(dataclasses.replace(m, memory_gib=10.0) for m in three.models),
        device_memory_gib=25.0,  # two models fit, not three
    )
    kept = Residency(sized, host_cache=1)
    assert [kept.move(m) for m in (m0, m1, m0)] == [Found.DISK, Found.DISK, Found.DEVICE]
    assert kept.device == [m0.weights, m1.weights] and kept.host == []
    assert kept.move(m2) is Found.DISK  # m1, the least recently used, leaves the device
    assert kept.device == [m2.weights, m0.weights] and kept.host == [m1.weights]
    assert kept.move(m1) is Found.HOST
    assert kept.device == [m1.weights, m2.weights] and kept.host == [m0.weights]
    assert kept.move(m1) is Found.ACTIVE
    # a model whose memory was not measured never shares the device
    unsized = dataclasses.replace(sized, models=(*sized.models[:2], m2))
    kept = Residency(unsized, host_cache=1)
    for m in (m0, m2, m0):
        kept.move(m)
    assert kept.device == [m0.weights] and kept.host == [m2.weights]


def test_a_switch_to_a_model_kept_on_the_device_takes_nothing(pool):
    """LoadModel.expected_s with device memory for both models: only the first load of
    each reads the disk; without room for both, moving back is a reload from host memory;
    the simulator and the profile executor charge what the engine expects."""
    from hadis.workers.executors import ProfileExecutor

    def switches(profile):
        eng = Engine(profile, 1, EngineConfig(slo_s=60.0, switch_delay_s=3.0),
                     TableRouter([0.0] * 10), TableDiscriminator([1.0] * 10))  # fmt: skip
        executor = ProfileExecutor(profile, time_scale=1e-3)
        out = []
        for t, model in enumerate(["m0", "m1", "m0", "m1"]):
            (load,) = eng.apply_plan(float(t), make_plan({model: 1}, {model: 1}, model))
            assert isinstance(load, LoadModel) and load.model == model
            out.append(load.expected_s)
            waited = executor.load(model) / 1e-3
            assert waited == pytest.approx(load.expected_s, abs=15.0)  # sleep granularity
            eng.worker_ready(float(t), load.worker)
        return out

    assert switches(_sized(pool, [10.0, 20.0], 30.0)) == [20.0, 40.0, 0.0, 0.0]
    assert switches(_sized(pool, [10.0, 20.0], 29.0)) == [20.0, 40.0, 2.0, 2.0]
    assert switches(_sized(pool, [10.0, None], 100.0)) == [20.0, 40.0, 2.0, 2.0]


def test_the_engine_moves_a_worker_that_keeps_the_model_on_its_device(pool):
    """A plan that wants one of two workers back on m0 moves the worker that kept m0 on
    its device (a free switch), not the one whose turn it would be (the lowest id)."""
    eng = Engine(_sized(pool, [10.0, 10.0], 30.0), 2, EngineConfig(slo_s=60.0),
                 TableRouter([0.0] * 10), TableDiscriminator([1.0] * 10))  # fmt: skip

    def adopt(t, gpus):
        loads = eng.apply_plan(t, make_plan(gpus, dict.fromkeys(gpus, 1), "m0"))
        for load in loads:
            eng.worker_ready(t, load.worker)
        return loads

    adopt(0.0, {"m0": 1, "m1": 1})
    (moved,) = [w.wid for w in eng.workers if w.loaded == "m0"]
    adopt(1.0, {"m1": 2})  # it keeps m0 on its device beside m1
    (load,) = adopt(2.0, {"m0": 1, "m1": 1})
    assert (load.worker, load.model, load.expected_s) == (moved, "m0", 0.0)


def test_moving_between_variants_of_the_same_weights_loads_nothing(pool):
    """Two variants of one source (other steps or guidance): the engine expects no load,
    the profile executor waits none, and a re-plan between them moves no worker (the
    diffusers executor reuses the pipeline; tests/test_serve_diffusers.py)."""
    from hadis.planner.hysteresis import workers_moved
    from hadis.workers.executors import ProfileExecutor

    m0, m1 = pool.models
    same = dataclasses.replace(
        pool,
        models=(
            dataclasses.replace(m0, source="weights/a"),
            dataclasses.replace(m1, source="weights/a"),
        ),
    )
    eng = Engine(same, 1, EngineConfig(slo_s=60.0, switch_delay_s=3.0),
                 TableRouter([0.0] * 10), TableDiscriminator([1.0] * 10))  # fmt: skip
    expected = []
    for t, model in enumerate(["m0", "m1", "m0"]):
        (load,) = eng.apply_plan(float(t), make_plan({model: 1}, {model: 1}, model))
        expected.append(load.expected_s)
        eng.worker_ready(float(t), load.worker)
    assert expected == [3.0, 0.0, 0.0]  # the first load is from disk

    executor = ProfileExecutor(same, time_scale=1.0, switch_delay_s=3.0)
    executor.load("m0")
    assert executor.load("m1") < 0.5  # same weights: no wait (a load would sleep 3 s)

    a, b = make_plan({"m0": 1}, {"m0": 1}, "m0"), make_plan({"m1": 1}, {"m1": 1}, "m1")
    assert workers_moved(a, b, same) == 0
    assert workers_moved(a, b, pool) == 1  # distinct sources: one worker loads


@pytest.mark.parametrize(
    "kw, word", [({"burst_quantile": 1.5}, "burst quantile"), ({"burst_window_s": 0.0}, "window")]
)
def test_controller_config_rejects_a_bad_burst_setting(kw, word):
    from hadis.core.config import ControllerConfig
    from hadis.errors import HadisError

    with pytest.raises(HadisError, match=word):
        ControllerConfig(**kw)
