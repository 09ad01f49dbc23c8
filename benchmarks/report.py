"""What every benchmark reports: figures with their target, settings and a same-run ratio.

A figure is one measured number. Its target says which way is good (`at_least` or
`at_most`) and the bound; `ratio` is the figure relative to a reference measured in the
same run (so that numbers compare across machines), with `ratio_of` naming it. A benchmark
that times something which did not succeed raises `BenchmarkFailed` instead of reporting.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal


class BenchmarkFailed(RuntimeError):
    """What a benchmark timed did not succeed (errors, non-2xx, drops): no figure."""


@dataclass(frozen=True)
class Target:
    bound: float
    sense: Literal["at_least", "at_most"]

    def met(self, value: float) -> bool:
        return bool(value >= self.bound if self.sense == "at_least" else value <= self.bound)

    def __str__(self) -> str:
        return f"{'>=' if self.sense == 'at_least' else '<='} {self.bound:g}"


@dataclass(frozen=True)
class Figure:
    suite: str
    name: str
    value: float
    unit: str
    settings: dict[str, Any] = field(default_factory=dict)
    target: Target | None = None
    ratio: float | None = None
    ratio_of: str = ""

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else self.target.met(self.value)

    def mark(self) -> str:
        return {None: "", True: "pass", False: "SHORT"}[self.passed]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["value"] = float(self.value)
        out["target"] = None if self.target is None else asdict(self.target)
        out["passed"] = self.passed
        return out


def at_least(bound: float) -> Target:
    return Target(bound, "at_least")


def at_most(bound: float) -> Target:
    return Target(bound, "at_most")


def print_figures(figures: list[Figure]) -> None:
    """One line per figure: name, value, target, pass/SHORT mark and the ratio."""
    for f in figures:
        target = f"target {f.target}" if f.target else ""
        ratio = f"x{f.ratio:.3f} of {f.ratio_of}" if f.ratio is not None else ""
        print(f"  {f.name:<58} {_num(f.value):>10} {f.unit:<8} {target:<16} {f.mark():<6} {ratio}")


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"


def machine() -> dict[str, Any]:
    versions = {}
    for pkg in ("hadis", "numpy", "scipy", "fastapi", "uvicorn", "torch", "spacy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "argv": sys.argv,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_report(path: Path, figures: list[Figure], suites: list[str], tiny: bool) -> None:
    report = {
        "machine": machine(),
        "suites": suites,
        "tiny": tiny,
        "figures": [f.to_dict() for f in figures],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


def markdown_table(report: dict[str, Any]) -> str:
    """The README's performance table, generated from a report."""
    m = report["machine"]
    lines = [
        f"Measured by `python -m benchmarks.run all --json` on {m['cpus']} CPUs "
        f"({m['machine']}), Python {m['python']}, {m['date'][:10]}.",
        "",
        "| suite | figure | value | target | | same-run ratio |",
        "|---|---|---|---|---|---|",
    ]
    for f in report["figures"]:
        target = ""
        if f["target"]:
            sign = ">=" if f["target"]["sense"] == "at_least" else "<="
            target = f"{sign} {f['target']['bound']:g}"
        mark = {None: "", True: "pass", False: "**short**"}[f["passed"]]
        ratio = f"{f['ratio']:.3f} of {f['ratio_of']}" if f["ratio"] is not None else ""
        lines.append(
            f"| {f['suite']} | {f['name']} | {_num(f['value'])} {f['unit']} | {target} "
            f"| {mark} | {ratio} |"
        )
    return "\n".join(lines)
