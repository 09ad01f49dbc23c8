"""Stand-in routers and discriminators, and the reference ones under their CLI names.

Registered elsewhere: `online`, the paper's router computed from the prompt text
(hadis.routing.features); `learned:PATH`, a router trained by `hadis router train`
(hadis.routing.learned); `trained:PATH`, a discriminator trained by `hadis discriminator
train` (hadis.routing.trained). Here: `none` never routes to heavy / never escalates;
`random` is a seeded pseudo-random score per prompt (router) or per prompt and image
(discriminator), uniform in [0, 1), so that r and d still mean fractions; `reference` is
the paper's per-prompt data (prompts of the reference set only; others score as if routed
by `random`).
"""

from __future__ import annotations

import hashlib

from hadis.profiles import Profile
from hadis.routing.base import Discriminator, Router
from hadis.routing.reference import ReferenceDiscriminator, ReferenceRouter
from hadis.routing.registry import (  # noqa: F401  (make_* re-exported)
    make_discriminator,
    make_router,
    register_discriminator,
    register_router,
)


def _uniform(*parts: object) -> float:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class NoRouter:
    name = "none"
    expensive = False

    def score(self, prompt_id: int | None, prompt: str | None = None) -> float:
        return 0.0

    def threshold(self, r: float) -> float:
        return float("inf")


class RandomRouter:
    name = "random"
    expensive = False

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def score(self, prompt_id: int | None, prompt: str | None = None) -> float:
        return _uniform(self.seed, prompt_id, prompt)

    def threshold(self, r: float) -> float:
        return 1.0 - r if r < 1 else float("-inf")


class NoDiscriminator:
    name = "none"

    def confidence(
        self, model: str, prompt_id: int | None, image_seed: int, image: bytes | None = None
    ) -> float:
        return 1.0

    def threshold(self, model: str, d: float) -> float:
        return float("-inf")


class RandomDiscriminator:
    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def confidence(
        self, model: str, prompt_id: int | None, image_seed: int, image: bytes | None = None
    ) -> float:
        return _uniform(self.seed, model, prompt_id, image_seed)

    def threshold(self, model: str, d: float) -> float:
        return d if d < 1 else float("inf")


class _ReferenceOrRandomRouter:
    """Reference scores for reference prompts (by id), seeded random for the rest."""

    name = "reference"
    expensive = False

    def __init__(self, seed: int) -> None:
        self.reference = ReferenceRouter()
        self.fallback = RandomRouter(seed)

    def score(self, prompt_id: int | None, prompt: str | None = None) -> float:
        if prompt_id is not None and 0 <= prompt_id < len(self.reference.scores):
            return self.reference.score(prompt_id)
        # place the fallback on the reference score scale through its quantile
        u = self.fallback.score(prompt_id, prompt)
        s = self.reference._sorted
        return float(s[min(int(u * len(s)), len(s) - 1)])

    def threshold(self, r: float) -> float:
        return self.reference.threshold(r)


class _ReferenceOrRandomDiscriminator:
    name = "reference"

    def __init__(self, profile: Profile, seed: int) -> None:
        self.reference = ReferenceDiscriminator(profile)
        self.fallback = RandomDiscriminator(seed)

    def confidence(
        self, model: str, prompt_id: int | None, image_seed: int, image: bytes | None = None
    ) -> float:
        if prompt_id is not None and model in self.reference.p_real:
            return self.reference.confidence(model, prompt_id, image_seed, image)
        u = self.fallback.confidence(model, prompt_id, image_seed)
        s = self.reference._sorted.get(model)
        return u if s is None else float(s[min(int(u * len(s)), len(s) - 1)])

    def threshold(self, model: str, d: float) -> float:
        if model in self.reference.p_real:
            return self.reference.threshold(model, d)
        return self.fallback.threshold(model, d)


@register_router("reference")
def _reference_router(arg: str, seed: int) -> Router:
    return _ReferenceOrRandomRouter(seed)


@register_router("random")
def _random_router(arg: str, seed: int) -> Router:
    return RandomRouter(seed)


@register_router("none")
def _no_router(arg: str, seed: int) -> Router:
    return NoRouter()


@register_discriminator("reference")
def _reference_discriminator(arg: str, profile: Profile, seed: int) -> Discriminator:
    return _ReferenceOrRandomDiscriminator(profile, seed)


@register_discriminator("random")
def _random_discriminator(arg: str, profile: Profile, seed: int) -> Discriminator:
    return RandomDiscriminator(seed)


@register_discriminator("none")
def _no_discriminator(arg: str, profile: Profile, seed: int) -> Discriminator:
    return NoDiscriminator()
