"""Training and judging prompt routers from per-prompt quality labels (`hadis router train`).

A router is worth its place when its top-r prompts are those where the heavy model helps
most. The labels are, per prompt, the quality of the light and the heavy model's images
(higher = better: a discriminator's P(real), an adherence score); several images per
prompt make the label less noisy and let the data measure its own noise (split-half).

Judged by grouped k-fold cross-validation (prompts with the same text share a fold),
against the rule router (the paper's eight features) and random scores:
  auc_gap_top20 / top40   AUC for finding the prompts whose heavy-minus-light gap is in
                          the top 20% / 40%;
  spearman_gap            rank correlation of the score with the gap;
  auc_light_bottom20      AUC for finding the prompts whose light image is in the worst 20%.
`split_half` scores each prompt by the gap of half of its images and judges that against
the other half: how well the data predicts itself, the ceiling for any router.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hadis.errors import HadisError
from hadis.routing.embeddings import EmbeddingRidge, encode
from hadis.routing.learned import MODELS, LearnedRouter, TfidfRidge

LABELS = ("gap", "light")
RANDOM_DRAWS = 20


@dataclass(frozen=True)
class RouterData:
    """Per-prompt image qualities of one (light, heavy) pair: (n, k) arrays, up to k images
    per prompt, NaN where a prompt has fewer."""

    prompts: list[str]
    light: np.ndarray
    heavy: np.ndarray
    source: str
    rule: np.ndarray | None = None  # the rule router's scores of these prompts, if known

    def __post_init__(self) -> None:
        n = len(self.prompts)
        if n < 10:
            raise HadisError(f"router training needs at least 10 prompts, got {n}")
        if self.light.shape != self.heavy.shape or self.light.shape[0] != n:
            raise HadisError("light and heavy qualities must have one row per prompt")
        if np.isinf(self.light).any() or np.isinf(self.heavy).any():
            raise HadisError("quality labels must be finite numbers")
        if not (np.isnan(self.light) == np.isnan(self.heavy)).all():
            raise HadisError("every light quality needs its heavy one")
        if np.isnan(self.light[:, 0]).any():
            raise HadisError("every prompt needs at least one quality pair")

    @property
    def images(self) -> int:
        """Image pairs in all."""
        return int(np.count_nonzero(~np.isnan(self.light)))

    @property
    def light_mean(self) -> np.ndarray:
        return np.nanmean(self.light, axis=1)

    @property
    def heavy_mean(self) -> np.ndarray:
        return np.nanmean(self.heavy, axis=1)

    def label(self, kind: str) -> np.ndarray:
        """What the router learns to rank high: the gap, or the light model's badness."""
        if kind == "gap":
            return self.heavy_mean - self.light_mean
        if kind == "light":
            return -self.light_mean
        raise HadisError(f"unknown label {kind!r}; valid: {', '.join(LABELS)}")


def paper_data(light: str = "sd35-large-turbo", heavy: str = "sd35-large") -> RouterData:
    """The paper's 5,000 prompts: the HADIS discriminator's P(real), 4 images per prompt."""
    from hadis.profiles import load_profile
    from hadis.routing.reference import ReferenceRouter, reference_arrays, reference_prompts

    profile = load_profile("hadis-l40s")
    p_real = reference_arrays()["disc_p_real"]
    index: dict[str, int] = {}
    for m in profile.models:
        idx = m.extra.get("index")
        if isinstance(idx, int):
            index[m.name] = idx
    for name in (light, heavy):
        if name not in index:
            raise HadisError(f"no model {name!r} in the paper data; valid: {', '.join(index)}")
    if light == heavy:
        raise HadisError("the light and heavy models must differ")
    return RouterData(
        list(reference_prompts()),
        p_real[index[light]].astype(float),
        p_real[index[heavy]].astype(float),
        f"paper data (hadis-l40s), discriminator P(real), {light} -> {heavy}",
        ReferenceRouter().scores,
    )


def csv_data(path: Path) -> RouterData:
    """A CSV with columns prompt, light, heavy: one row per image pair (same prompt and
    seed); the rows of a prompt are its images (any number)."""
    from hadis.textfiles import read_text

    rows = list(csv.DictReader(read_text(path, "label file").splitlines()))
    if not rows or not {"prompt", "light", "heavy"} <= set(rows[0]):
        raise HadisError(f"label file {path}: needs a header with prompt, light, heavy")
    by_prompt: dict[str, list[tuple[float, float]]] = {}
    for line, row in enumerate(rows, start=2):
        try:
            pair = (float(row["light"]), float(row["heavy"]))
        except (TypeError, ValueError):
            raise HadisError(
                f"label file {path}, line {line}: light/heavy must be numbers"
            ) from None
        by_prompt.setdefault(row["prompt"], []).append(pair)
    prompts = list(by_prompt)
    arr = np.full((len(prompts), max(map(len, by_prompt.values())), 2), np.nan)
    for i, p in enumerate(prompts):
        arr[i, : len(by_prompt[p])] = by_prompt[p]
    return RouterData(prompts, arr[:, :, 0], arr[:, :, 1], f"labels {path}", _rule_scores(prompts))


def workdir_data(
    workdir: Path, prompts_file: Path, light: str, heavy: str, quality: str = "discriminator"
) -> RouterData:
    """A `hadis profile build` work folder: image i of each variant for prompt i, scored
    by the discriminator confidences it cached (`discriminator`) or, for the demo pool, by
    the adherence checker's share of clauses that hold (`adherence`)."""
    from hadis.textfiles import read_text

    prompts = [p for p in read_text(prompts_file, "prompt file").splitlines() if p.strip()]
    images = Path(workdir) / "images"
    for v in (light, heavy):
        if not (images / v).is_dir():
            raise HadisError(f"{images / v} does not exist: no images of variant {v!r}")
    if quality == "discriminator":
        files = sorted(Path(workdir).glob("scores-*.json"))
        if len(files) != 1:
            raise HadisError(
                f"{workdir}: expected one scores-*.json (the profiler's discriminator "
                f"confidences), found {len(files)}"
            )
        conf = json.loads(files[0].read_text())["confidence"]
        values = {v: np.asarray(conf[v], dtype=float)[:, None] for v in (light, heavy)}
    elif quality == "adherence":
        values = {v: _adherence(images / v, prompts) for v in (light, heavy)}
    else:
        raise HadisError(f"unknown quality {quality!r}; valid: discriminator, adherence")
    if any(len(a) != len(prompts) for a in values.values()):
        raise HadisError(f"{workdir} holds images for another prompt set than {prompts_file}")
    return RouterData(
        prompts,
        values[light],
        values[heavy],
        f"work folder {workdir}, {quality}, {light} -> {heavy}",
        _rule_scores(prompts),
    )


def _adherence(folder: Path, prompts: list[str]) -> np.ndarray:
    from PIL import Image

    from hadis.demo.adherence import check

    out = np.zeros((len(prompts), 1))
    for i, prompt in enumerate(prompts):
        path = folder / f"{i}.png"
        if not path.exists():
            raise HadisError(f"{path} is missing")
        result = check(Image.open(path), prompt)
        if result is None:
            raise HadisError(f"prompt {i} is not a demo-world prompt: {prompt!r}")
        out[i, 0] = result.score
    return out


def _rule_scores(prompts: list[str]) -> np.ndarray | None:
    """The paper's rule router on these prompts, when spaCy is installed."""
    try:
        from hadis.routing.features import OnlineRouter

        return OnlineRouter().score_many(prompts)
    except HadisError:
        return None


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for the boolean `positive` (ties count half)."""
    from scipy.stats import rankdata

    pos = np.asarray(positive, dtype=bool)
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def metrics(scores: np.ndarray, gap: np.ndarray, light: np.ndarray) -> dict[str, float]:
    """How well `scores` rank the prompts by the true gap and light-model quality."""
    from scipy.stats import spearmanr

    return {
        "auc_gap_top20": auc(scores, gap >= np.quantile(gap, 0.8)),
        "auc_gap_top40": auc(scores, gap >= np.quantile(gap, 0.6)),
        # scores that rank nothing (all equal) correlate with nothing
        "spearman_gap": float(spearmanr(scores, gap)[0]) if np.ptp(scores) > 0 else 0.0,
        "auc_light_bottom20": auc(scores, light <= np.quantile(light, 0.2)),
    }


def folds_of(prompts: list[str], folds: int, seed: int) -> np.ndarray:
    """Fold index per prompt; prompts with the same text share a fold."""
    groups: dict[str, int] = {}
    gid = np.array([groups.setdefault(p, len(groups)) for p in prompts])
    if folds < 2 or folds > len(groups):
        raise HadisError(f"folds must be in [2, {len(groups)}] (distinct prompts), got {folds}")
    order = np.random.default_rng(seed).permutation(len(groups))
    return (order % folds)[gid]


def out_of_fold(
    data: RouterData,
    label: str,
    folds: int = 5,
    seed: int = 0,
    alpha: float = 3.0,
    model: str = "tfidf",
    embedded: np.ndarray | None = None,
) -> np.ndarray:
    """Each prompt's score from a model trained on the other folds (`embedded`: the
    prompts' sentence embeddings, computed once, for model "minilm")."""
    y = data.label(label)
    fold = folds_of(data.prompts, folds, seed)
    pred = np.zeros(len(y))
    if model == "minilm" and embedded is None:
        embedded = encode(data.prompts)
    for k in range(folds):
        train, test = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        if embedded is not None:
            fitted = EmbeddingRidge.fit_embedded(embedded[train], y[train], alpha)
            pred[test] = fitted.predict_embedded(embedded[test])
        else:
            tfidf = TfidfRidge.fit([data.prompts[i] for i in train], y[train], alpha)
            pred[test] = tfidf.predict([data.prompts[i] for i in test])
    return pred


def evaluate(data: RouterData, oof: np.ndarray, seed: int = 0) -> dict[str, dict[str, float]]:
    """Metrics of the learned (out-of-fold), rule and random routers, and the split-half
    ceiling when there are at least two images per prompt."""
    gap, light = data.label("gap"), data.light_mean
    report = {"learned": metrics(oof, gap, light)}
    if data.rule is not None:
        report["rule"] = metrics(data.rule, gap, light)
    rng = np.random.default_rng(seed)
    draws = [metrics(rng.random(len(gap)), gap, light) for _ in range(RANDOM_DRAWS)]
    report["random"] = {k: float(np.mean([d[k] for d in draws])) for k in draws[0]}
    halves = split_halves(data)
    if halves is not None:
        (light_a, heavy_a), (light_b, heavy_b) = halves
        gap_b = heavy_b - light_b
        half = metrics(heavy_a - light_a, gap_b, light_b)
        # the light-quality ceiling ranks by the light model's own half-A badness
        half["auc_light_bottom20"] = metrics(-light_a, gap_b, light_b)["auc_light_bottom20"]
        report["split_half"] = half
    return report


def split_halves(
    data: RouterData,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None:
    """Mean light and heavy quality over the first and the second half of each prompt's
    images (prompts with one image are left out); None when no prompt has two."""
    counts = (~np.isnan(data.light)).sum(axis=1)
    rows = np.flatnonzero(counts >= 2)
    if len(rows) < 10:
        return None
    out = np.zeros((2, 2, len(rows)))
    for j, i in enumerate(rows):
        m = counts[i] // 2
        for h, part in enumerate((slice(0, m), slice(m, counts[i]))):
            out[h, 0, j] = data.light[i, part].mean()
            out[h, 1, j] = data.heavy[i, part].mean()
    return (out[0, 0], out[0, 1]), (out[1, 0], out[1, 1])


def train_router(
    data: RouterData,
    label: str = "gap",
    folds: int = 5,
    seed: int = 0,
    alpha: float = 3.0,
    model: str = "tfidf",
) -> tuple[LearnedRouter, dict[str, dict[str, float]]]:
    """Cross-validate, then fit on every prompt. The router's cut points are the
    out-of-fold scores: new prompts score like held-out ones, not like training ones.
    model: tfidf (TF-IDF + ridge, the default) or minilm (sentence embeddings + ridge)."""
    if alpha <= 0:
        raise HadisError(f"alpha must be > 0, got {alpha}")
    if model not in MODELS:
        raise HadisError(f"unknown router model {model!r}; valid: {', '.join(MODELS)}")
    embedded = encode(data.prompts) if model == "minilm" else None
    oof = out_of_fold(data, label, folds, seed, alpha, model, embedded)
    report = evaluate(data, oof, seed)
    fitted: TfidfRidge | EmbeddingRidge
    if embedded is not None:
        fitted = EmbeddingRidge.fit_embedded(embedded, data.label(label), alpha)
    else:
        fitted = TfidfRidge.fit(data.prompts, data.label(label), alpha)
    trained: dict[str, Any] = {
        "data": data.source,
        "prompts": len(data.prompts),
        "image_pairs": data.images,
        "label": label,
        "alpha": alpha,
        "model": model,
        "folds": folds,
        "seed": seed,
        "cross_validation": report,
    }
    return LearnedRouter(fitted, oof, trained), report
