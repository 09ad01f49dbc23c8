"""Bring your own pool: CSV tables -> import -> validate -> plan -> simulate, and the
example in docs/profile-format.md imports to exactly the JSON it shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hadis.cli.main import app
from hadis.profiles import load_profile
from hadis.profiles.io import profile_from_dict, profile_to_dict
from hadis.profiles.lint import check_document

runner = CliRunner()
DOC = Path(__file__).resolve().parent.parent / "docs" / "profile-format.md"


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def _import(tmp_path: Path, latencies: str, quality: str, *extra: str):
    (tmp_path / "lat.csv").write_text(latencies)
    (tmp_path / "q.csv").write_text(quality)
    out = tmp_path / "pool.json"
    res = runner.invoke(
        app,
        ["profile", "import", "--latencies", str(tmp_path / "lat.csv")]
        + ["--quality", str(tmp_path / "q.csv"), "--name", "my-pool", "-o", str(out), *extra],
    )
    return res, out


def test_the_documented_example_imports_to_the_documented_json(tmp_path):
    latencies, quality = _blocks("csv")
    (shown,) = _blocks("json")
    res, out = _import(tmp_path, latencies, quality, "--slo", "20", "--workers", "4")
    assert res.exit_code == 0, res.output
    imported, documented = load_profile(out), profile_from_dict(json.loads(shown))
    assert imported.models == documented.models
    assert [(c.pair, c.r, c.d, c.f, c.quality) for c in imported.configs] == [
        (c.pair, c.r, c.d, c.f, c.quality) for c in documented.configs
    ]
    for a, b in zip(imported.configs, documented.configs, strict=True):
        assert a.latency_s == pytest.approx(b.latency_s)
    assert imported.serving == documented.serving
    assert not [i for i in check_document(json.loads(shown)) if i.level == "error"]


def test_import_validate_plan_simulate_end_to_end(tmp_path):
    latencies, quality = _blocks("csv")
    res, out = _import(tmp_path, latencies, quality, "--slo", "20", "--workers", "4")
    assert res.exit_code == 0, res.output
    assert "2 models, 4 configurations" in res.stdout
    res = runner.invoke(app, ["profile", "validate", str(out)])
    assert res.exit_code == 0 and "valid" in res.stdout, res.output
    res = runner.invoke(app, ["plan", "--profile", str(out), "--demand", "1", "--json"])
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    # the profile's serving defaults: 4 GPUs, SLO 20 s
    assert plan["gpus_available"] == 4 and plan["slo_s"] == 20.0
    assert sum(plan["gpus"].values()) == 4 and plan["feasible"]
    res = runner.invoke(
        app,
        ["simulate", "--profile", str(out), "--qps", "0.3:1", "--point-seconds", "1"]
        + ["--policies", "hadis,diffserve,clipper-light", "--json"],
    )
    assert res.exit_code == 0, res.output
    runs = json.loads(res.stdout)
    assert runs["clipper-light"]["quality"] == pytest.approx(30.0)
    assert runs["hadis"]["quality"] < 30.0


def test_a_corrupted_copy_fails_validation_naming_the_field(tmp_path):
    latencies, quality = _blocks("csv")
    _, out = _import(tmp_path, latencies, quality)
    doc = json.loads(out.read_text())
    doc["models"][1]["latency"] = doc["models"][1].pop("latency_s")  # misspelt
    doc["configs"][0]["quality"] = "good"
    doc["configs"].append(dict(doc["configs"][1]))  # duplicate row
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    res = runner.invoke(app, ["profile", "validate", str(bad)])
    assert res.exit_code == 2
    lines = res.stderr.splitlines()
    assert any("models[1].latency: unknown field; did you mean 'latency_s'?" in ln for ln in lines)
    assert any("configs[0].quality" in ln for ln in lines)
    res = runner.invoke(app, ["plan", "--profile", str(bad), "--demand", "1"])
    assert res.exit_code == 2 and "latency_s" in res.stderr


@pytest.mark.parametrize(
    ("mutate", "level", "fragment"),
    [
        (lambda d: d["models"][0]["latency_s"].update({"1": 5000.0}), "error", "milliseconds"),
        (lambda d: d["models"][0]["latency_s"].update({"1": 150.0}), "warning", "milliseconds"),
        (lambda d: d["models"][1]["latency_s"].update({"4": 1.0}), "warning", "less than batch"),
        (lambda d: d["configs"].append(dict(d["configs"][0])), "error", "duplicate of"),
        (lambda d: d["configs"][0].update(latency_s=9.0), "warning", "disagrees"),
        (lambda d: d["models"][0].update(max_batch=64), "warning", "beyond the batch sizes"),
        (lambda d: d["models"][0].update(max_batch=2), "warning", "above max_batch"),
        (lambda d: d.update(config=[]), "error", "did you mean 'configs'"),
        (lambda d: d["configs"][0].update(heavy="slwo"), "error", "did you mean 'slow'"),
    ],
)
def test_validation_levels(tmp_path, mutate, level, fragment):
    latencies, quality = _blocks("csv")
    _, out = _import(tmp_path, latencies, quality)
    doc = json.loads(out.read_text())
    mutate(doc)
    issues = [i for i in check_document(doc) if fragment in str(i)]
    assert issues and issues[0].level == level, check_document(doc)


def test_bundled_profiles_are_clean_and_round_trip(tmp_path):
    for name in ("hadis-l40s", "demo-cpu"):
        profile = load_profile(name)
        doc = profile_to_dict(profile)
        assert check_document(json.loads(json.dumps(doc))) == []
        again = profile_from_dict(json.loads(json.dumps(doc)))
        assert profile_to_dict(again) == doc  # every field kept, notes included
    assert load_profile("hadis-l40s").models[0].batch_rule.note


@pytest.mark.parametrize(
    ("latencies", "quality", "fragment"),
    [
        ("model,batch,seconds\nfast,2,0.8\n", "light,heavy,r,d,quality\nfast,,,,3\n", "no batch-1"),
        ("model,batch,seconds\nfast,1,0.5\nfast,1,0.6\n", "light,heavy,r,d,quality\n", "twice"),
        (
            "model,batch,seconds\nfast,1,0.5\nslow,1,4\n",
            "light,heavy,r,d,quality\nfast,slow,0,0.5,25\n",
            "no quality for 'fast' alone",
        ),
        (
            "model,batch,seconds\nfast,1,0.5\n",
            "light,heavy,r,d,quality\nfast,nope,0,0.5,25\n",
            "not in the latency table",
        ),
        ("model,batch,secs\nfast,1,0.5\n", "light,heavy,r,d,quality\n", "did you mean 'seconds'"),
    ],
)
def test_import_errors_are_one_line(tmp_path, latencies, quality, fragment):
    res, _ = _import(tmp_path, latencies, quality)
    assert res.exit_code == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and fragment in lines[0], res.stderr
