"""Registry of planning policies, keyed by name, each with its typed options.

A policy is one class: `@register("name", options=MyOptions)` sets its `name`, and
`MyOptions` (a dataclass, default: no options) lists what it can be configured with; the
registry builds the policy from validated options. Drivers that hold options for several
policies at once (e.g. `hadis simulate --table ... --solver ...` over every policy) pass
each policy the ones it declares (`options_for`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from hadis.core.plan import Plan, PlanRequest
from hadis.errors import HadisError


class PlanningPolicy(Protocol):
    """Chooses a Plan from a PlanRequest. Called by the controller every re-plan period.

    Implementations are pure: no clock, no sleeping, no I/O; any memory between calls
    comes from `PlanRequest.previous`.
    """

    name: str

    def plan(self, req: PlanRequest) -> Plan: ...


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """A policy with nothing to configure."""


P = TypeVar("P")
_REGISTRY: dict[str, tuple[Callable[..., Any], type]] = {}


def register(name: str, options: type = NoOptions) -> Callable[[type[P]], type[P]]:
    """Class decorator: register the policy under `name` (which becomes its `name`),
    configured by the dataclass `options`."""
    if not dataclasses.is_dataclass(options):
        raise TypeError(f"options of policy {name!r} must be a dataclass")

    def deco(cls: type[P]) -> type[P]:
        if name in _REGISTRY:
            raise ValueError(f"policy {name!r} is registered twice")
        cls.name = name  # type: ignore[attr-defined]
        _REGISTRY[name] = (cls, options)
        return cls

    return deco


def policy_names() -> list[str]:
    return list(_REGISTRY)


def policy_options(name: str) -> type:
    """The options dataclass of a registered policy."""
    return _entry(name)[1]


def options_for(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The subset of `options` that policy `name` declares."""
    fields = {f.name for f in dataclasses.fields(policy_options(name))}
    return {k: v for k, v in options.items() if k in fields}


def get_policy(name: str, **options: Any) -> PlanningPolicy:
    """Instantiate a registered policy from its options; an unknown name lists the valid
    ones, an option the policy does not declare lists the ones it does."""
    factory, spec = _entry(name)
    fields = [f.name for f in dataclasses.fields(spec)]
    unknown = sorted(set(options) - set(fields))
    if unknown:
        valid = ", ".join(fields) or "none"
        raise HadisError(f"policy {name!r} has no option {unknown[0]!r}; its options: {valid}")
    return factory(**dataclasses.asdict(spec(**options)))


def _entry(name: str) -> tuple[Callable[..., Any], type]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise HadisError(f"unknown policy {name!r}; valid: {', '.join(_REGISTRY)}") from None
