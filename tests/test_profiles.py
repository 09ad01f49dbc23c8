import json

import pytest

from hadis.errors import ProfileError
from hadis.profiles import load_profile, pareto_front, pareto_table, save_profile
from hadis.profiles.io import profile_from_dict, profile_to_dict
from hadis.profiles.model import ConfigRow, Direction, Metric


def test_bundled_profile_contents(paper_profile):
    p = paper_profile
    assert [m.name for m in p.models] == [
        "sdxl-lightning",
        "sd35-large-turbo",
        "sd35-medium",
        "sd35-large",
    ]
    assert len(p.configs) == 726
    assert p.metric == Metric("FID", Direction.LOWER)
    assert [m.latency_s[1] for m in p.models] == [0.5, 1.3, 13.0, 27.0]
    assert len(p.pairs) == 6
    assert "research artifacts" in p.provenance


def test_batch_rule_and_capacity(paper_profile):
    heavy = paper_profile.model("sd35-large")
    assert heavy.batch_latency_s(1) == 27.0
    assert heavy.batch_latency_s(2) == pytest.approx(0.9 * 2 * 27.0)
    assert heavy.capacity_qps(4) == pytest.approx(4 / (0.9 * 4 * 27.0))


def test_adjacent_pareto_front_matches_reference(paper_profile):
    front = pareto_table(paper_profile, adjacent_only=True)
    assert len(front) == 46
    assert min(r.quality for r in front) == 19.29
    assert max(r.quality for r in front) == 29.75
    adjacent = set(paper_profile.adjacent_pairs())
    assert adjacent == {
        ("sdxl-lightning", "sd35-large-turbo"),
        ("sd35-large-turbo", "sd35-medium"),
        ("sd35-medium", "sd35-large"),
    }
    assert all(r.pair in adjacent for r in front)
    candidates = [c for c in paper_profile.configs if c.pair in adjacent]
    for a in front:  # nothing on the front is dominated by any candidate
        assert not any(
            b.latency_s <= a.latency_s
            and b.quality <= a.quality
            and (b.latency_s < a.latency_s or b.quality < a.quality)
            for b in candidates
        )
    for c in candidates:  # everything off the front is dominated or an exact tie
        if c not in front:
            assert any(b.latency_s <= c.latency_s and b.quality <= c.quality for b in front)


def test_pareto_ties_keep_first_in_table_order():
    metric = Metric("FID", Direction.LOWER)
    a = ConfigRow("x", "y", 0.0, 0.0, 0.0, 20.0, 1.0)
    b = ConfigRow("x", "y", 0.1, 0.0, 0.1, 20.0, 1.0)  # exact tie with a
    c = ConfigRow("x", "y", 0.2, 0.0, 0.2, 20.0, 2.0)  # same quality, slower: dominated
    d = ConfigRow("x", "y", 0.3, 0.0, 0.3, 19.0, 2.0)
    assert pareto_front([a, b, c, d], metric) == [a, d]
    assert pareto_front([b, a, c, d], metric) == [b, d]
    higher = Metric("CLIP", Direction.HIGHER)
    assert pareto_front([a, d], higher) == [a]


def test_per_pair_front_is_union_of_pair_fronts(paper_profile):
    per_pair = pareto_table(paper_profile, per_pair=True)
    for pair in paper_profile.pairs:
        rows = [c for c in paper_profile.configs if c.pair == pair]
        assert [r for r in per_pair if r.pair == pair] == pareto_front(rows, paper_profile.metric)


def test_save_load_round_trip(tmp_path, paper_profile):
    path = tmp_path / "p.json"
    save_profile(paper_profile, path)
    again = load_profile(path)
    assert again.models == paper_profile.models
    assert again.configs == paper_profile.configs


def _doc(paper_profile):
    return json.loads(json.dumps(profile_to_dict(paper_profile)))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["models"][0]["latency_s"].pop("1"), "batch-1 latency"),
        (lambda d: d["configs"][0].update(light="nope"), "unknown model 'nope'"),
        (lambda d: d["configs"][5].update(f=0.9), "configs[5].f"),
        (lambda d: d["configs"][0].update(r=1.5), "configs[0].r"),
        (lambda d: d.update(version=2), "version"),
        (lambda d: d["models"][1].update(name=d["models"][0]["name"]), "unique"),
        (lambda d: d["metric"].update(direction="up"), "metric.direction"),
        (lambda d: d["configs"][0].update(heavy=d["configs"][0]["light"]), "must differ"),
    ],
)
def test_validation_errors_name_the_field(paper_profile, mutate, message):
    doc = _doc(paper_profile)
    mutate(doc)
    with pytest.raises(ProfileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        profile_from_dict(doc)


def test_load_errors(tmp_path):
    with pytest.raises(ProfileError, match="unknown profile 'nope'"):
        load_profile("nope")
    with pytest.raises(ProfileError, match="not found"):
        load_profile(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ProfileError, match="invalid JSON at line 1"):
        load_profile(bad)


def test_serving_defaults_round_trip_and_are_validated(paper_profile):
    doc = profile_to_dict(paper_profile)
    assert "serving" not in doc  # absent unless set
    doc["serving"] = {"router": "online", "workers": 2, "slo_s": 5.0}
    prof = profile_from_dict(doc)
    assert (prof.serving.router, prof.serving.workers, prof.serving.slo_s) == ("online", 2, 5.0)
    assert prof.serving.discriminator is None
    assert profile_to_dict(prof)["serving"] == {"router": "online", "workers": 2, "slo_s": 5.0}
    doc["serving"] = {"workers": 0}
    with pytest.raises(ProfileError, match="serving.workers"):
        profile_from_dict(doc)
    doc["serving"] = {"threads": 2}
    with pytest.raises(ProfileError, match="threads"):
        profile_from_dict(doc)


def test_batch_latency_interpolates_between_measured_sizes_and_extrapolates_by_the_rule():
    demo = load_profile("demo-cpu")
    m = demo.model("base-25")
    measured = sorted(m.latency_s)
    lat = [m.batch_latency_s(b) for b in range(1, m.max_batch + 1)]
    assert all(a <= b for a, b in zip(lat, lat[1:], strict=False))  # monotone
    for lo, hi in zip(measured, measured[1:], strict=False):
        for b in range(lo + 1, hi):
            assert m.latency_s[lo] < m.batch_latency_s(b) < m.latency_s[hi]
    assert m.batch_latency_s(3) == pytest.approx((m.latency_s[2] + m.latency_s[4]) / 2)
    # only batch 1 measured (the paper pool): the rule, as before
    paper = load_profile("hadis-l40s").models[0]
    assert paper.batch_latency_s(3) == pytest.approx(0.9 * 3 * paper.latency_s[1])
    # beyond the largest measured size: the rule, never below that size's latency
    big = m.batch_latency_s(measured[-1] + 1)
    assert big >= m.latency_s[measured[-1]]


def test_memory_fields_round_trip_are_validated_and_linted(paper_profile):
    """`device_memory_gib` (profile) and `memory_gib` (model) load, save and are checked;
    a model without its memory under a device budget is a warning (it never shares)."""
    from hadis.profiles.lint import lint_document

    # the paper's pool carries its weights' sizes (models.csv), not a device budget
    assert [m.memory_gib for m in paper_profile.models] == [6.5, 27.4, 16.6, 27.4]
    assert paper_profile.device_memory_gib is None
    doc = _doc(paper_profile)
    assert "device_memory_gib" not in doc
    doc["device_memory_gib"] = 40.0
    prof = profile_from_dict(doc)
    assert prof.device_memory_gib == 40.0 and profile_to_dict(prof)["device_memory_gib"] == 40.0
    assert lint_document(doc)[0] == []
    del doc["models"][2]["memory_gib"]
    (issue,) = lint_document(doc)[0]
    assert issue.level == "warning" and issue.where == "models[2].memory_gib"
    with pytest.raises(ProfileError, match="device_memory_gib"):
        profile_from_dict({**doc, "device_memory_gib": 0})
    doc["models"][0]["memory_gib"] = -1
    with pytest.raises(ProfileError, match=r"models\[0\].memory_gib"):
        profile_from_dict(doc)
