"""Prompt routers and image discriminators (interfaces and implementations)."""

from hadis.routing.base import Discriminator, Router, cut_above, cut_below
from hadis.routing.reference import (
    ReferenceDiscriminator,
    ReferenceRouter,
    reference_prompts,
)

__all__ = [
    "Discriminator",
    "ReferenceDiscriminator",
    "ReferenceRouter",
    "Router",
    "cut_above",
    "cut_below",
    "reference_prompts",
]
