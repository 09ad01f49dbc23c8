"""Each benchmark runs in its tiny configuration, so a broken benchmark fails CI."""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest

from benchmarks import report
from benchmarks.run import SUITES, main, run_suites
from benchmarks.serve_bench import wrk


def _needs(suite: str) -> str | None:
    if suite in ("serve", "overload") and shutil.which("wrk") is None:
        return "wrk is not installed (apt-get install wrk; CI installs it)"
    if suite == "ray" and importlib.util.find_spec("ray") is None:
        return "the ray extra is not installed"
    if suite == "ray" and shutil.which("wrk") is None:
        return "wrk is not installed (apt-get install wrk; CI installs it)"
    if suite == "router" and importlib.util.find_spec("spacy") is None:
        return "the router extra is not installed"
    return None


@pytest.mark.slow
@pytest.mark.parametrize("suite", list(SUITES))
def test_benchmark_runs_in_its_tiny_configuration(suite):
    if reason := _needs(suite):
        pytest.skip(reason)
    figures, failed = run_suites([suite], tiny=True)
    assert not failed, failed
    assert figures and all(f.suite == suite for f in figures)
    assert any(f.target is not None for f in figures), "every suite states a target"
    for f in figures:
        assert f.settings, f"{f.name} does not name its settings"
        assert f.value == f.value  # not NaN


def test_report_json_and_markdown_table(tmp_path, monkeypatch):
    out = tmp_path / "report.json"
    monkeypatch.setitem(
        SUITES,
        "planner",
        lambda tiny: [
            report.Figure("planner", "p99", 12.0, "ms", {"gpus": 16}, report.at_most(20.0)),
            report.Figure("planner", "ratio", 0.5, "ratio", {"gpus": 16}, report.at_least(0.8)),
        ],
    )
    assert main(["planner", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["machine"]["cpus"] and data["suites"] == ["planner"]
    assert [f["passed"] for f in data["figures"]] == [True, False]
    table = report.markdown_table(data)
    assert "| planner | p99 | 12.00 ms | <= 20 | pass |" in table
    assert "**short**" in table


def test_a_failing_benchmark_fails_the_run(monkeypatch):
    def broken(tiny: bool) -> list:
        raise report.BenchmarkFailed("3 non-2xx responses")

    monkeypatch.setitem(SUITES, "serve", broken)
    assert main(["serve"]) == 1


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_wrk_fails_loudly_on_errors():
    # nothing listens on this port: socket errors, never a throughput figure
    with pytest.raises(report.BenchmarkFailed):
        wrk("http://127.0.0.1:9/v1/images/generations", 1, 1)


def test_readme_table_matches_the_committed_report():
    from benchmarks.readme import END, README, REPORT, START, render

    text = README.read_text(encoding="utf-8")
    table = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert table == render(REPORT).strip(), "run python -m benchmarks.readme"
    data = json.loads(REPORT.read_text())
    assert not data["tiny"] and set(data["suites"]) == set(SUITES)


def test_wrk_output_is_read_from_the_latency_distribution(monkeypatch):
    import subprocess

    from benchmarks import serve_bench

    out = """Running 1s test @ http://127.0.0.1:1/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.61ms    0.98ms   9.02ms   62.50%
    Req/Sec     1.11k   192.76     1.51k    65.99%
  Latency Distribution
     50%    3.46ms
     75%    4.26ms
     90%    4.90ms
     99%  612.00us
  4427 requests in 4.00s, 43.85MB read
Requests/sec:   1106.54
"""
    done = subprocess.CompletedProcess([], 0, stdout=out, stderr="")
    monkeypatch.setattr(serve_bench.subprocess, "run", lambda *a, **k: done)
    got = serve_bench.wrk("http://127.0.0.1:1/", 4, 1)
    assert got == {"rps": 1106.54, "p50_ms": 3.46, "p99_ms": 0.612}


def test_the_robustness_seeds_can_be_chosen(monkeypatch):
    from benchmarks.robustness_bench import seeds_to_run

    assert seeds_to_run(False) == (0, 1, 2, 3) and seeds_to_run(True) == (0,)
    monkeypatch.setenv("HADIS_ROBUSTNESS_SEEDS", "4,5,6,7")
    assert seeds_to_run(False) == (4, 5, 6, 7)
    monkeypatch.setenv("HADIS_ROBUSTNESS_SEEDS", "four")
    with pytest.raises(report.BenchmarkFailed, match="integers"):
        seeds_to_run(False)
