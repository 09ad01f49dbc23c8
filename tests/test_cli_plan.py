import json

import pytest
from typer.testing import CliRunner

from hadis.cli.main import app

runner = CliRunner()


def test_plan_json_has_required_keys():
    res = runner.invoke(
        app,
        [
            "plan",
            "--profile",
            "hadis-l40s",
            "--gpus",
            "16",
            "--slo",
            "60",
            "--demand",
            "3.5",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for key in ("pair", "r", "d", "gpus", "batch", "quality", "feasible", "solve_ms"):
        assert key in out
    assert sum(out["gpus"].values()) == 16
    assert out["feasible"] is True


def test_plan_table_output():
    res = runner.invoke(app, ["plan", "--demand", "2", "--policy", "proteus"])
    assert res.exit_code == 0, res.output
    assert "policy proteus" in res.stdout and "split:" in res.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "nope"], "unknown profile 'nope'"),
        (["--gpus", "0"], "gpus must be a positive integer"),
        (["--gpus", "-3"], "gpus must be a positive integer"),
        (["--demand", "-1"], "demand must be"),
        (["--slo", "0.2"], "below every model's latency"),
        (["--policy", "bogus"], "unknown policy 'bogus'"),
        (["--table", "bogus"], "unknown table 'bogus'"),
    ],
)
def test_plan_bad_input_exits_2_with_one_line(args, message):
    res = runner.invoke(app, ["plan", "--demand", "1", *args])
    assert res.exit_code == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0]
    assert "Traceback" not in res.output


def test_profile_show_prints_pool_and_pareto_table():
    res = runner.invoke(app, ["profile", "show", "hadis-l40s", "--json"])
    assert res.exit_code == 0
    rows = json.loads(res.stdout)
    assert len(rows) == 46
    res = runner.invoke(app, ["profile", "show", "hadis-l40s"])
    assert res.exit_code == 0
    assert "46 rows of 726" in res.stdout and "sd35-large" in res.stdout


def test_profile_show_unknown_exits_2():
    res = runner.invoke(app, ["profile", "show", "nope.json"])
    assert res.exit_code == 2
    assert "not found" in res.stderr
