"""Paths a new user takes through the CLI: traces with texts, rescaled trace files, sparse
traces, one plan schema for every policy, a policy that cannot run on a pool."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from hadis.cli.main import app
from hadis.planner.hadis_policy import diffserve_pair
from hadis.profiles import load_profile, save_profile
from hadis.profiles.synthetic import synthetic_pool
from hadis.sim.trace import azure_functions, load_trace_csv, write_trace_csv

runner = CliRunner()


def test_a_trace_with_prompt_texts_needs_and_takes_a_router(tmp_path):
    trace = tmp_path / "texts.csv"
    trace.write_text(
        "arrival_s,prompt\n0,a red ball on the grass\n1,two cats left of a lamp\n2,a dog\n"
    )
    res = runner.invoke(app, ["simulate", "--trace", str(trace), "--policies", "hadis"])
    assert res.exit_code == 2 and "--router online" in res.stderr
    res = runner.invoke(
        app,
        ["simulate", "--trace", str(trace), "--policies", "hadis,diffserve"]
        + ["--router", "random", "--json"],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["hadis"]["served"] == out["diffserve"]["served"] == 3


def test_qps_time_stretches_a_trace_file_keeping_its_queries(tmp_path):
    path = tmp_path / "t.csv"
    write_trace_csv(azure_functions(1.0, 6.4, 10.0, seed=0).until(600), path)
    original = load_trace_csv(path)
    res = runner.invoke(
        app, ["simulate", "--trace", str(path), "--qps", "1.5", "--policies", "hadis", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["hadis"]["queries"] == len(original)
    stretched = original.with_mean_rate(1.5)
    assert len(stretched) / stretched.duration_s == pytest.approx(1.5)
    # the shape is kept: arrival times are scaled by one factor
    ratio = stretched.arrival_s[1:] / original.arrival_s[1:]
    assert np.allclose(ratio, ratio[0])


def test_a_sparse_trace_costs_its_queries_not_its_span(tmp_path):
    path = tmp_path / "far.csv"
    path.write_text("arrival_s,prompt_id\n0,1\n1,2\n5e8,3\n9e8,4\n")
    start = time.perf_counter()
    res = runner.invoke(
        app, ["simulate", "--trace", str(path), "--policies", "hadis,oracle", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert time.perf_counter() - start < 30  # not minutes of empty ticks
    out = json.loads(res.stdout)
    assert out["hadis"]["served"] == 4 and out["hadis"]["violation_ratio"] == 0.0


def test_plan_json_has_one_schema_for_every_policy():
    keys = None
    for policy in ("hadis", "diffserve", "proteus", "infaas-acc", "clipper-light", "clipper-heavy"):
        res = runner.invoke(app, ["plan", "--demand", "2", "--policy", policy, "--json"])
        assert res.exit_code == 0, res.output
        plan = json.loads(res.stdout)
        keys = keys or set(plan)
        assert set(plan) == keys, policy
        assert plan["quality"]["metric"] == "FID" and plan["quality"]["better"] == "lower"
        assert set(plan["paths_s"]) <= {"light", "direct-heavy", "escalated", "single-model"}
        if policy == "clipper-heavy":  # the heavy model alone is not called "light"
            assert plan["single"] == "sd35-large" and plan["light"] is None
        if policy == "proteus":
            assert plan["split"] and plan["single"] is None and plan["pair"] is None
        if policy in ("hadis", "diffserve"):
            assert (
                plan["light"] and plan["heavy"] and plan["pair"] == [plan["light"], plan["heavy"]]
            )


def test_plan_takes_slo_and_gpus_from_the_profile():
    demo = load_profile("demo-cpu")
    res = runner.invoke(app, ["plan", "--profile", "demo-cpu", "--demand", "1", "--json"])
    plan = json.loads(res.stdout)
    assert plan["gpus_available"] == demo.serving.workers and plan["slo_s"] == demo.serving.slo_s


def test_diffserve_picks_a_pair_the_table_has_and_a_failing_policy_keeps_the_others(tmp_path):
    pool = synthetic_pool(6, pair_span=2)
    pair = diffserve_pair(pool)
    assert pair in pool.pairs and pair == ("s03", "s05")
    # a table without discriminator-only rows: diffserve cannot run, the others still do
    no_r0 = dataclasses.replace(pool, configs=tuple(c for c in pool.configs if c.r > 0))
    path = tmp_path / "pool.json"
    save_profile(no_r0, path)
    res = runner.invoke(
        app,
        ["simulate", "--profile", str(path), "--policies", "hadis,diffserve,clipper-light"]
        + ["--qps", "1:3", "--point-seconds", "1", "--json"],
    )
    assert res.exit_code == 2
    out = json.loads(res.stdout)
    assert "error" in out["diffserve"] and out["hadis"]["served"] > 0
    assert out["clipper-light"]["served"] > 0
    assert "policy diffserve could not run" in res.stderr
