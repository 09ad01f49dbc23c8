"""`hadis load` against a real server on a port (profile executor, fast time scale)."""

import json

from typer.testing import CliRunner

from hadis.cli.main import app
from hadis.serve import ServeConfig, build_app
from tests.serve_helpers import running_server


def test_load_reports_like_simulate(paper_profile, tmp_path):
    trace = tmp_path / "t.csv"
    res = CliRunner().invoke(
        app, ["trace", "constant", "--qps", "2", "--seconds", "60", "-o", str(trace)]
    )
    assert res.exit_code == 0
    # admission off, as in the parity test: what is checked is the report, and a cold
    # server's admission control can turn part of a burst away (429) on a busy machine
    config = ServeConfig(workers=16, time_scale=0.02, admission=False)
    server = build_app(paper_profile, config, executor="profile")
    with running_server(server) as base:
        res = CliRunner().invoke(
            app, ["load", "--url", base, "--trace", str(trace), "--time-scale", "0.02", "--json"]
        )
    assert res.exit_code == 0, res.output
    live = json.loads(res.stdout)["live"]
    for key in ("violation_ratio", "quality", "served", "dropped", "late", "http_status"):
        assert key in live
    assert live["queries"] == live["served"] + live["dropped"]
    assert live["http_status"].get("200", 0) >= 0.9 * live["queries"]
    assert 19.0 < live["quality"] < 30.0


def test_load_adopts_the_servers_settings_and_refuses_a_different_time_scale(
    paper_profile, tmp_path
):
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,prompt_id\n0,1\n0.5,2\n1,3\n")
    server = build_app(paper_profile, ServeConfig(workers=4, time_scale=0.02), executor="profile")
    with running_server(server) as base:
        res = CliRunner().invoke(
            app, ["load", "--url", base, "--trace", str(trace), "--time-scale", "0.05"]
        )
        assert res.exit_code == 2 and "differs from the server's 0.02" in res.stderr
        res = CliRunner().invoke(app, ["load", "--url", base, "--trace", str(trace)])
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.split())  # the table title wraps
    assert "hadis-l40s, 4 workers" in text and "time scale 0.02" in text
