"""Every command, on bad input: exit code 2, one line on stderr, no traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hadis.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    binary = d / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 8)
    utf16 = d / "utf16.csv"
    utf16.write_text("arrival_s\n1\n", encoding="utf-16")
    nan = d / "nan.csv"
    nan.write_text("arrival_s\nnan\n")
    inf = d / "inf.csv"
    inf.write_text("arrival_s\ninf\n")
    extra = d / "extra.csv"
    extra.write_text("arrival_s,prompt_id\n1,2,3\n")
    short = d / "short.csv"
    short.write_text("arrival_s,prompt_id\n1\n")
    wrong = d / "wrong.csv"
    wrong.write_text("arival_s\n1\n")
    afile = d / "afile"
    afile.write_text("x")
    latin = d / "latin.txt"
    latin.write_bytes("café\n".encode("latin-1"))
    return {
        "dir": str(d),
        "binary": str(binary),
        "utf16": str(utf16),
        "nan": str(nan),
        "inf": str(inf),
        "extra": str(extra),
        "short": str(short),
        "wrong": str(wrong),
        "afile": str(afile),
        "latin": str(latin),
        "missing_dir_out": str(d / "no" / "such" / "out.csv"),
    }


CASES = [
    # (args, a fragment of the message)
    (["plan", "--demand", "1", "--gpus", "0"], "gpus"),
    (["plan", "--demand", "nan"], "demand"),
    (["plan", "--demand", "1", "--slo", "0.01"], "below every model's latency"),
    (["plan", "--demand", "1", "--profile", "{binary}"], "not a text file"),
    (["plan", "--demand", "1", "--profile", "{dir}"], "directory"),
    (["plan", "--demand", "1", "--overprovision", "0.5"], "overprovision"),
    (["plan", "--demand", "1", "--batch-wait", "1.5"], "batch wait"),
    (["simulate", "--policies", "hadis", "--batch-wait", "-0.1"], "batch wait"),
    (["simulate", "--trace", "{binary}"], "not a text file"),
    (["simulate", "--trace", "{utf16}"], "UTF-16"),
    (["simulate", "--trace", "{nan}"], "finite"),
    (["simulate", "--trace", "{inf}"], "finite"),
    (["simulate", "--trace", "{extra}"], "line 2 has 3 fields"),
    (["simulate", "--trace", "{short}"], "line 2 has 1 fields"),
    (["simulate", "--trace", "{wrong}"], "'arrival_s'"),
    (["simulate", "--trace", "{dir}"], "directory"),
    (["simulate", "--out", "{afile}"], "--out"),
    (["simulate", "--qps", "1:nope"], "--qps"),
    (["simulate", "--policies", "hadis", "--gpus", "-1"], "gpus"),
    (["simulate", "--policies", "hadis", "--window", "0"], "window"),
    (["simulate", "--policies", "hadis", "--latency-noise", "-1"], "noise"),
    (["simulate", "--policies", "hadis", "--switch-delay", "-1"], "switch delay"),
    (["simulate", "--policies", "hadis", "--replan-period", "0"], "period"),
    (["simulate", "--policies", "hadis", "--device-memory", "0"], "--device-memory"),
    (["simulate", "--policies", "hadis", "--device-memory", "inf"], "--device-memory"),
    (["simulate", "--policies", "hadis", "--router", "nope"], "unknown router"),
    (["trace", "constant", "--qps", "1", "--seconds", "10", "-o", "{missing_dir_out}"], "--out"),
    (["trace", "constant", "--qps", "1", "--seconds", "10", "-o", "{dir}"], "directory"),
    (["trace", "constant", "--qps", "1e9", "--seconds", "1e9", "-o", "{afile}"], "limit"),
    (["trace", "constant", "--qps", "-1", "--seconds", "10", "-o", "{afile}"], "qps"),
    (["trace", "step", "--levels", "1:x", "-o", "{afile}"], "levels"),
    (["trace", "azure-functions", "--qps", "6:1", "-o", "{afile}"], "qps"),
    (
        [
            "trace",
            "bursty",
            "--qps",
            "2",
            "--seconds",
            "60",
            "--burstiness",
            "0.5",
            "-o",
            "{afile}",
        ],
        "burstiness",
    ),
    (["trace", "bursty", "--qps", "1e9", "--seconds", "1e9", "-o", "{afile}"], "limit"),
    (["trace", "azure-functions", "--point-seconds", "0", "-o", "{afile}"], "point"),
    (["profile", "show", "{binary}"], "not a text file"),
    (["profile", "show", "nope"], "unknown profile"),
    (["profile", "validate", "{binary}"], "not a text file"),
    (["profile", "validate", "{dir}/missing.json"], "no such file"),
    (
        ["profile", "import", "--latencies", "{binary}", "--quality", "{binary}"]
        + ["--name", "x", "-o", "{dir}/x.json"],
        "not a text file",
    ),
    (
        ["profile", "import", "--latencies", "{wrong}", "--quality", "{wrong}"]
        + ["--name", "x", "-o", "{dir}/x.json"],
        "column",
    ),
    (["route", "--file", "{binary}"], "not a text file"),
    (["route", "--file", "{latin}"], "not UTF-8"),
    (["route", "a cat", "--r", "2"], "r must be in"),
    (["route"], "give a prompt"),
    (["serve", "--slo", "0.01", "--profile", "hadis-l40s", "--executor", "profile"], "below"),
    (["serve", "--max-queue", "0", "--executor", "instant"], "--max-queue"),
    (["serve", "--device-memory", "-1", "--executor", "instant"], "--device-memory"),
    (["serve", "--shutdown-timeout", "-1", "--executor", "instant"], "--drain-timeout"),
    (["serve", "--drain-timeout", "nan", "--executor", "instant"], "--drain-timeout"),
    (["serve", "--body-timeout", "0", "--executor", "instant"], "--body-timeout"),
    (["serve", "--watchdog-factor", "1", "--executor", "instant"], "--watchdog-factor"),
    (["serve", "--restart-after", "nan", "--executor", "instant"], "--restart-after"),
    (["serve", "--workers", "0", "--executor", "instant"], "--workers"),
    (["serve", "--workers", "many", "--executor", "instant"], "--workers"),
    (["serve", "--workers", "auto", "--executor", "instant"], "need --backend ray"),
    (["serve", "--ray-address", "auto", "--executor", "instant"], "need --backend ray"),
    (["serve", "--backend", "nope", "--executor", "instant"], "unknown backend"),
    (["serve", "--chaos", "explode:1", "--executor", "instant"], "unknown chaos"),
    (["serve", "--load-timeout", "-1", "--executor", "instant"], "--load-timeout"),
    (["serve", "--host-cache", "-1", "--executor", "instant"], "--host-cache"),
    (["serve", "--batch-wait", "2", "--executor", "instant"], "batch wait"),
    (["serve", "--ssl-keyfile", "k.pem", "--executor", "instant"], "go together"),
    (["serve", "--ssl-keyfile", "/nope/k", "--ssl-certfile", "/nope/c"], "no such file"),
    (["serve", "--limit-concurrency", "0", "--executor", "instant"], "--limit-concurrency"),
    (["serve", "--timeout-keep-alive", "0", "--executor", "instant"], "--timeout-keep-alive"),
    (["serve", "--chaos", "fail-rate:2", "--executor", "instant"], "bad chaos"),
    (["serve", "--chaos", "hang:-1", "--executor", "instant"], "bad chaos"),
    (["serve", "--chaos", "fail:9", "--executor", "instant", "--workers", "2"], "worker 9"),
    (["serve", "--time-scale", "0", "--executor", "profile"], "--time-scale"),
    (["serve", "--port", "0", "--executor", "instant"], "port"),
    (["serve", "--executor", "nope"], "unknown executor"),
    (["serve", "--executor", "instant", "--api-key", " "], "--api-key"),
    (["serve", "--executor", "instant", "--max-body-bytes", "10"], "--max-body-bytes"),
    (["serve", "--policy", "nope"], "unknown policy"),
    (["load", "--time-scale", "0"], "--time-scale"),
    (["load", "--time-scale", "-1"], "--time-scale"),
    (["load", "--url", "not a url"], "--url"),
    (["load", "--url", "http://127.0.0.1:9"], "cannot reach"),
    (
        ["discriminator", "train", "--real", "{dir}/x", "--generated", "{dir}", "--out", "o"],
        "folder",
    ),
]


@pytest.mark.parametrize(("args", "fragment"), CASES, ids=[" ".join(a[:3]) for a, _ in CASES])
def test_bad_input_exits_2_with_one_line(files, args, fragment):
    argv = [a.format(**files) for a in args]
    res = runner.invoke(app, argv)
    assert res.exit_code == 2, (argv, res.output, res.exception)
    assert "Traceback" not in res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, (argv, res.stderr)
    assert fragment in lines[0], (argv, lines[0])
