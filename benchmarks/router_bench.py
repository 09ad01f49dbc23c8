"""Online router: agreement with the paper's reference features (5,000 prompts) and cost.

Cost: one prompt at a time (the request path, cache off) and batched (nlp.pipe).
"""

from __future__ import annotations

import time

import numpy as np

from hadis.routing.features import FEATURE_NAMES, OnlineRouter, load_spacy
from hadis.routing.reference import ReferenceRouter, reference_arrays, reference_prompts


def main() -> None:
    router = OnlineRouter()
    nlp = load_spacy()
    prompts = list(reference_prompts())
    t = time.perf_counter()
    mine = router.extractor.features(prompts)
    batch_s = time.perf_counter() - t
    ref = reference_arrays()["features"]
    print(
        f"online router: spaCy {nlp.meta['name']} {nlp.meta['version']}; "
        f"agreement with the reference features over {len(prompts)} prompts"
    )
    for name, share in zip(FEATURE_NAMES, (mine == ref).mean(axis=0), strict=True):
        print(f"  {name:<18} {share:7.2%} exact")
    ref_scores = ReferenceRouter().scores
    scores = router.scores_of(mine)
    agree = []
    for r in np.round(np.arange(0.1, 1.0, 0.1), 1):
        cut = router.threshold(float(r))
        agree.append(f"{r:g}: {np.mean((scores > cut) == (ref_scores > cut)):.2%}")
    print("  routing decisions agree at r = " + ", ".join(agree))
    single = []
    for p in prompts[:1000]:
        s = time.perf_counter()
        router.scores_of(router.extractor.features([p]))
        single.append((time.perf_counter() - s) * 1e3)
    print(
        f"  cost per prompt, one at a time: p50 {np.percentile(single, 50):.2f} ms, "
        f"p99 {np.percentile(single, 99):.2f} ms; batched: "
        f"{batch_s / len(prompts) * 1e3:.2f} ms per prompt"
    )


if __name__ == "__main__":
    main()
