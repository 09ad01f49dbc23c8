"""Planning: PlanRequest -> Plan, for HADIS (MILP) and the baselines. No I/O, no clock."""

import importlib
import pkgutil

from hadis.core.plan import Plan, PlanRequest
from hadis.planner.hadis_policy import DiffServePolicy, HadisPolicy, throughput_fallback
from hadis.planner.registry import (
    NoOptions,
    PlanningPolicy,
    get_policy,
    options_for,
    policy_names,
    policy_options,
    register,
)

__all__ = [
    "DiffServePolicy",
    "HadisPolicy",
    "NoOptions",
    "Plan",
    "PlanRequest",
    "PlanningPolicy",
    "get_policy",
    "options_for",
    "plan",
    "policy_names",
    "policy_options",
    "register",
    "throughput_fallback",
]


# Every module of this package is imported, so a policy registered in a new file here is
# found without touching anything else (docs/architecture.md, "Add a policy").
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def plan(req: PlanRequest, policy: str = "hadis") -> Plan:
    """Plan with a registered policy by name (a fresh instance: no memory across calls)."""
    return get_policy(policy).plan(req)
