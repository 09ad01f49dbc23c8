"""Router and discriminator that replay the paper's per-prompt reference data.

The router scores a prompt from its eight precomputed features (z-scored over the 5,000
reference prompts, weighted by the paper's weights); the discriminator returns the paper's
discriminator P(real) for one of the prompt's four images (chosen by the image seed).
Used by the simulator; online implementations plug into the same interfaces.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

from hadis.errors import HadisError
from hadis.profiles import Profile
from hadis.routing.base import cut_above, cut_below

ROUTER_WEIGHTS = np.array([0.85, 0.32, 0.72, 0.99, 0.76, 0.07, 0.78, 0.01])
N_PROMPTS = 5000
IMAGES_PER_PROMPT = 4


@lru_cache(maxsize=1)
def reference_arrays() -> dict[str, np.ndarray]:
    ref = resources.files("hadis") / "data" / "reference" / "hadis_reference.npz"
    with resources.as_file(ref) as path, np.load(path) as data:
        return {k: data[k] for k in data.files}


@lru_cache(maxsize=1)
def reference_prompts() -> tuple[str, ...]:
    ref = resources.files("hadis") / "data" / "reference" / "prompts.txt"
    return tuple(ref.read_text(encoding="utf-8").splitlines())


@lru_cache(maxsize=1)
def _reference_ids() -> dict[str, int]:
    return {p: i for i, p in enumerate(reference_prompts())}


def reference_prompt_id(prompt: str) -> int | None:
    """The id of a prompt text in the reference set (the paper's 5,000 prompts, whose
    router features and discriminator scores are bundled), None if it is not one."""
    return _reference_ids().get(prompt)


def _check_prompt(prompt_id: int | None) -> int:
    if prompt_id is None or not 0 <= prompt_id < N_PROMPTS:
        raise HadisError(
            f"the reference router/discriminator need a prompt_id in [0, {N_PROMPTS}), "
            f"got {prompt_id!r}"
        )
    return prompt_id


def _check_ids(prompt_ids: np.ndarray) -> np.ndarray:
    """Many prompt ids at once, each checked like `_check_prompt`."""
    ids = np.asarray(prompt_ids)
    if ids.size and (ids.min() < 0 or ids.max() >= N_PROMPTS):
        _check_prompt(int(ids.min() if ids.min() < 0 else ids.max()))
    return ids


class ReferenceRouter:
    """The paper's rule-based router over precomputed features."""

    name = "reference-features"
    expensive = False

    def __init__(self) -> None:
        feats = reference_arrays()["features"].astype(float)
        std = feats.std(axis=0)
        z = (feats - feats.mean(axis=0)) / np.where(std > 0, std, 1.0)
        self.scores = z @ ROUTER_WEIGHTS
        self._sorted = np.sort(self.scores)
        self._scores = self.scores.tolist()  # list indexing: the per-query hot path

    def score(self, prompt_id: int | None, prompt: str | None = None) -> float:
        if prompt_id is None or not 0 <= prompt_id < N_PROMPTS:
            _check_prompt(prompt_id)
        return self._scores[prompt_id]

    def threshold(self, r: float) -> float:
        return cut_above(self._sorted, r)

    def score_ids(self, prompt_ids: np.ndarray) -> list[float]:
        """Scores of many reference prompts at once (a simulator scores its trace ahead)."""
        return self.scores[_check_ids(prompt_ids)].tolist()


class ReferenceDiscriminator:
    """The paper's discriminator outputs for models with reference scores.

    A profile model maps to reference model i through `extra["index"]` (the hadis-l40s
    profile sets it).
    """

    name = "reference-scores"

    def __init__(self, profile: Profile) -> None:
        p_real = reference_arrays()["disc_p_real"]
        self.p_real: dict[str, np.ndarray] = {}
        for m in profile.models:
            idx = m.extra.get("index")
            if isinstance(idx, int) and 0 <= idx < p_real.shape[0]:
                self.p_real[m.name] = p_real[idx]
        if not self.p_real:
            raise HadisError(
                f"profile {profile.name!r} has no model with reference discriminator scores "
                "(extra.index); use another discriminator"
            )
        self._sorted = {m: np.sort(a.ravel()) for m, a in self.p_real.items()}
        self._flat = {m: a.ravel().tolist() for m, a in self.p_real.items()}  # hot path

    def confidence(
        self, model: str, prompt_id: int | None, image_seed: int, image: bytes | None = None
    ) -> float:
        table = self._flat.get(model)
        if table is None:
            raise HadisError(f"no reference discriminator scores for model {model!r}")
        if prompt_id is None or not 0 <= prompt_id < N_PROMPTS:
            prompt_id = _check_prompt(prompt_id)
        return table[prompt_id * IMAGES_PER_PROMPT + image_seed % IMAGES_PER_PROMPT]

    def threshold(self, model: str, d: float) -> float:
        return cut_below(self._sorted[model], d)

    def confidence_ids(
        self, model: str, prompt_ids: np.ndarray, image_seeds: np.ndarray
    ) -> list[float] | None:
        """Confidences of many (prompt id, image seed) at once; None for a model without
        reference scores (a simulator looks a whole trace up ahead)."""
        table = self.p_real.get(model)
        if table is None:
            return None
        ids = _check_ids(prompt_ids)
        return table[ids, np.asarray(image_seeds) % IMAGES_PER_PROMPT].tolist()
