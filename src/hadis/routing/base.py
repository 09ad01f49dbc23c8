"""Router and discriminator interfaces.

Both are used through percentile cut points: r and d are fractions, and the thresholds that
realise them are quantiles of the scores of a reference prompt set, whatever the raw scale.
"""

from __future__ import annotations

from typing import Protocol

from hadis.core.cuts import DiscriminatorCut, RouterCut


class Router(RouterCut, Protocol):
    """Scores a prompt before generation; higher = more likely to need the heavy model.

    Drivers score each query before they submit it (`score`); the engine asks for the cut
    point once per plan change (`threshold`).

    expensive: scoring takes milliseconds (a language model, a parser): a server scores it
    off its event loop.
    """

    name: str
    expensive: bool

    def score(self, prompt_id: int | None, prompt: str | None) -> float: ...

    def threshold(self, r: float) -> float:
        """Cut point: a fraction r of reference prompts score strictly above it."""
        ...


class Discriminator(DiscriminatorCut, Protocol):
    """Scores a light model's image; the confidence that it is good (P(real)), in [0, 1].

    Called by the driver for the images of a batch that may escalate (Dispatch.scored):
    on the worker with the image (PNG bytes) in the server, with None in simulation; the
    confidences go back to the engine with the batch result.
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
