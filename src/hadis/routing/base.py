"""Router and discriminator interfaces.

Both are used through percentile cut points: r and d are fractions, and the thresholds that
realise them are quantiles of the scores of a reference prompt set, whatever the raw scale.
"""

from __future__ import annotations

from typing import Protocol


class Router(Protocol):
    """Scores a prompt before generation; higher = more likely to need the heavy model.

    Called by the engine once per query on arrival (`score`) and once per plan change
    (`threshold`).
    """

    name: str

    def score(self, prompt_id: int | None, prompt: str | None) -> float: ...

    def threshold(self, r: float) -> float:
        """Cut point: a fraction r of reference prompts score strictly above it."""
        ...


class Discriminator(Protocol):
    """Scores a light model's image; the confidence that it is good (P(real)), in [0, 1].

    Called by the engine for every query after its light batch finished, with the image
    (PNG bytes) when the driver has one (the server) and None in simulation. A driver may
    compute it earlier, off the engine's thread, and set Query.confidence instead.
    """

    name: str

    def confidence(
        self, model: str, prompt_id: int | None, image_seed: int, image: bytes | None = None
    ) -> float: ...

    def threshold(self, model: str, d: float) -> float:
        """Cut point: a fraction d of the model's reference images score strictly below it."""
        ...


def cut_above(sorted_scores, r: float) -> float:
    """Threshold t such that a fraction r of `sorted_scores` (ascending) is > t."""
    n = len(sorted_scores)
    k = n - int(round(r * n))  # number of scores at or below the cut
    if k <= 0:
        return float("-inf")
    if k >= n:
        return float("inf")
    return float(sorted_scores[k - 1])


def cut_below(sorted_scores, d: float) -> float:
    """Threshold t such that a fraction d of `sorted_scores` (ascending) is < t."""
    n = len(sorted_scores)
    k = int(round(d * n))  # number of scores strictly below the cut
    if k <= 0:
        return float("-inf")
    if k >= n:
        return float("inf")
    return float(sorted_scores[k])
