"""Checking a profile document: every problem at once, each one line, errors and warnings.

Errors make a profile unusable (unknown or misspelt fields, wrong types, unknown models,
duplicate rows, latencies in milliseconds, f that does not match r and d). Warnings flag
what is legal but probably a mistake (batch latencies that fall as the batch grows, row
latencies that disagree with the models' own, measured batch sizes the planner never
uses, a `max_batch` beyond the sizes the planner considers, an empty table).
`hadis profile validate FILE` prints them; loading a profile raises on the first error.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from hadis.profiles.io import (
    BatchRuleSpec,
    ConfigSpec,
    MetricSpec,
    ModelSpec,
    ProfileSpec,
    ServingSpec,
)
from hadis.profiles.model import BATCH_SIZES

MS_ERROR_S = 1000.0  # a batch-1 latency this large is almost surely milliseconds
MS_WARNING_S = 100.0
ROW_LATENCY_TOLERANCE = 0.05  # relative: row latency vs (1 - r) L_l(1) + f L_h(1)


@dataclass(frozen=True)
class Issue:
    level: Literal["error", "warning"]
    where: str
    message: str

    def __str__(self) -> str:
        return (
            f"{self.level}: {self.where}: {self.message}"
            if self.where
            else (f"{self.level}: {self.message}")
        )


def _fields(spec: type[BaseModel]) -> list[str]:
    return list(spec.model_fields)


def _unknown_fields(data: Any, spec: type[BaseModel], where: str) -> list[Issue]:
    if not isinstance(data, dict):
        return []
    valid = _fields(spec)
    out = []
    for key in data:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f" (valid: {', '.join(valid)})"
            out.append(Issue("error", f"{where}{key}", f"unknown field{hint}"))
    return out


def _all_unknown_fields(data: dict[str, Any]) -> list[Issue]:
    issues = _unknown_fields(data, ProfileSpec, "")
    spec: type[BaseModel]
    for key, spec in (
        ("metric", MetricSpec),
        ("batch_latency_rule", BatchRuleSpec),
        ("serving", ServingSpec),
    ):
        issues += _unknown_fields(data.get(key), spec, f"{key}.")
    for key, spec in (("models", ModelSpec), ("configs", ConfigSpec)):
        items = data.get(key)
        if isinstance(items, list):
            for i, item in enumerate(items):
                issues += _unknown_fields(item, spec, f"{key}[{i}].")
    return issues


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def check_document(data: dict[str, Any]) -> list[Issue]:
    """Every problem of a parsed profile document, errors first."""
    return lint_document(data)[0]


def lint_document(data: dict[str, Any]) -> tuple[list[Issue], ProfileSpec | None]:
    """Every problem, errors first, and the validated spec (None when it does not
    validate): loading a profile builds from that spec instead of validating twice."""
    issues = _all_unknown_fields(data)
    try:
        spec = ProfileSpec.model_validate(data)
    except ValidationError as e:
        unknown = {i.where for i in issues}
        for err in e.errors():
            where = _loc(err["loc"])
            if err["type"] == "extra_forbidden" and where in unknown:
                continue  # already named, with a suggestion
            issues.append(Issue("error", where, err["msg"]))
        return issues, None
    issues += _semantic(spec)
    return sorted(issues, key=lambda i: i.level != "error"), spec


def _semantic(spec: ProfileSpec) -> list[Issue]:
    issues: list[Issue] = []
    names = [m.name for m in spec.models]
    seen: set[str] = set()
    for i, m in enumerate(spec.models):
        where = f"models[{i}]"
        if m.name in seen:
            issues.append(
                Issue(
                    "error",
                    f"{where}.name",
                    f"model names must be unique; {m.name!r} appears twice",
                )
            )
        seen.add(m.name)
        issues += _latency_issues(m, where)
    latency1 = {m.name: m.latency_s.get(1, math.nan) for m in spec.models}
    rows: dict[tuple[str, str, float, float], int] = {}
    for i, c in enumerate(spec.configs):
        where = f"configs[{i}]"
        bad_ref = False
        for role in ("light", "heavy"):
            name = getattr(c, role)
            if name not in latency1:
                close = difflib.get_close_matches(name, names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f" (models: {names})"
                issues.append(Issue("error", f"{where}.{role}", f"unknown model {name!r}{hint}"))
                bad_ref = True
        if c.light == c.heavy:
            issues.append(
                Issue("error", where, f"light and heavy must differ, both are {c.light!r}")
            )
        expected_f = c.r + (1 - c.r) * c.d
        if abs(c.f - expected_f) > 1e-3:
            issues.append(
                Issue(
                    "error", f"{where}.f", f"expected r + (1 - r) d = {expected_f:.4f}, got {c.f}"
                )
            )
        key = (c.light, c.heavy, round(c.r, 6), round(c.d, 6))
        if key in rows:
            issues.append(
                Issue("error", where, f"duplicate of configs[{rows[key]}] (same pair, r and d)")
            )
        else:
            rows[key] = i
        if not bad_ref:
            expected = (1 - c.r) * latency1[c.light] + c.f * latency1[c.heavy]
            if abs(c.latency_s - expected) > ROW_LATENCY_TOLERANCE * expected + 1e-6:
                issues.append(
                    Issue(
                        "warning",
                        f"{where}.latency_s",
                        f"{c.latency_s:g} s disagrees with the models' latencies: "
                        f"(1 - r) L_light(1) + f L_heavy(1) = {expected:.4g} s",
                    )
                )
    if not spec.configs:
        issues.append(
            Issue("warning", "configs", "no configuration rows: only single-model plans exist")
        )
    if spec.device_memory_gib is not None:
        for i, m in enumerate(spec.models):
            if m.memory_gib is None:
                issues.append(
                    Issue(
                        "warning",
                        f"models[{i}].memory_gib",
                        "missing while device_memory_gib is set: this model never shares a "
                        "device with another",
                    )
                )
    return issues


def _latency_issues(m: ModelSpec, where: str) -> list[Issue]:
    issues = []
    first = m.latency_s.get(1)
    if first is not None and first >= MS_ERROR_S:
        issues.append(
            Issue(
                "error",
                f"{where}.latency_s",
                f"{first:g} s per image at batch 1 looks like milliseconds (latencies are seconds)",
            )
        )
    elif first is not None and first >= MS_WARNING_S:
        issues.append(
            Issue(
                "warning",
                f"{where}.latency_s",
                f"{first:g} s per image at batch 1: are these milliseconds? (expected seconds)",
            )
        )
    sizes = sorted(m.latency_s)
    for small, big in zip(sizes, sizes[1:], strict=False):
        if m.latency_s[big] < m.latency_s[small]:
            issues.append(
                Issue(
                    "warning",
                    f"{where}.latency_s",
                    f"batch {big} takes {m.latency_s[big]:g} s, less than batch {small} "
                    f"({m.latency_s[small]:g} s): timing noise? seconds per batch do not fall "
                    "as it grows",
                )
            )
    if m.max_batch > BATCH_SIZES[-1]:
        issues.append(
            Issue(
                "warning",
                f"{where}.max_batch",
                f"{m.max_batch} is beyond the batch sizes the planner considers "
                f"({', '.join(map(str, BATCH_SIZES))})",
            )
        )
    unused = [b for b in sizes if b > m.max_batch]
    if unused:
        issues.append(
            Issue(
                "warning",
                f"{where}.latency_s",
                f"batch size(s) {unused} are above max_batch {m.max_batch} and never used",
            )
        )
    return issues
