"""Registry of planning policies, keyed by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from hadis.errors import HadisError
from hadis.planner.types import Plan, PlanRequest


class PlanningPolicy(Protocol):
    """Chooses a Plan from a PlanRequest. Called by the controller every re-plan period.

    Implementations are pure: no clock, no sleeping, no I/O; any memory between calls
    comes from `PlanRequest.previous`.
    """

    name: str

    def plan(self, req: PlanRequest) -> Plan: ...


_REGISTRY: dict[str, Callable[..., PlanningPolicy]] = {}


def register(name: str) -> Callable[[Callable[..., PlanningPolicy]], Callable[..., PlanningPolicy]]:
    def deco(factory: Callable[..., PlanningPolicy]) -> Callable[..., PlanningPolicy]:
        if name in _REGISTRY:
            raise ValueError(f"policy {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory

    return deco


def policy_names() -> list[str]:
    return list(_REGISTRY)


def get_policy(name: str, **options: Any) -> PlanningPolicy:
    """Instantiate a registered policy; an unknown name lists the valid ones."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise HadisError(f"unknown policy {name!r}; valid: {', '.join(_REGISTRY)}") from None
    return factory(**options)
