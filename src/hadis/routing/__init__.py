"""Prompt routers and image discriminators (interfaces and implementations)."""

import importlib
import pkgutil

from hadis.routing.base import Discriminator, Router, cut_above, cut_below
from hadis.routing.reference import (
    ReferenceDiscriminator,
    ReferenceRouter,
    reference_prompt_id,
    reference_prompts,
)

__all__ = [
    "Discriminator",
    "ReferenceDiscriminator",
    "ReferenceRouter",
    "Router",
    "cut_above",
    "cut_below",
    "reference_prompt_id",
    "reference_prompts",
]

# Every module of this package is imported, so a router or discriminator registered in a
# new file here is found by name without touching anything else (routing/registry.py).
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
