"""Shared CLI plumbing: one-line errors with exit code 2, console objects."""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from hadis.errors import HadisError
from hadis.profiles import Profile

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

# Options shared by several commands (the same names, defaults and help everywhere).
PROFILE_OPTION = typer.Option("hadis-l40s", help="Bundled profile name or profile file.")
TRACE_OPTION = typer.Option(
    "azure-functions", help="Trace CSV file, or 'azure-functions' (the paper's workload)."
)
QPS_OPTION = typer.Option(
    None,
    help="azure-functions: MIN:MAX queries/s (default 1.0:6.4); with a trace file: a mean "
    "rate to time-stretch it to (same queries and shape).",
)
POINT_SECONDS_OPTION = typer.Option(10.0, help="azure-functions: seconds per point.")
DEVICE_MEMORY_OPTION = typer.Option(
    None,
    "--device-memory",
    help="GiB of device memory a worker may fill with models' weights (instead of the "
    "profile's device_memory_gib): it keeps the models it moved off on its device while "
    "their memory_gib fits, so moving back loads nothing. Default: the profile's (the "
    "bundled profiles give none: one model per device).",
)
BATCH_WAIT_HELP = (
    "Share of a batch the planner lets a query wait for the one in progress: 0 the paper's "
    "rule, 0.5 the mean, 1 the worst case (docs/planner.md)."
)


def with_device_memory(profile: Profile, gib: float | None) -> Profile:
    """`profile` with --device-memory, when given (checked: > 0)."""
    if gib is None:
        return profile
    if not 0 < gib < math.inf:
        raise HadisError(f"--device-memory must be > 0 GiB, got {gib}")
    return dataclasses.replace(profile, device_memory_gib=gib)


def fail(message: str) -> None:
    """Print one line to stderr and exit with code 2 (bad input)."""
    err_console.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(2)


def check_output_file(path: Path, option: str) -> None:
    """Fail before any work when `path` cannot be written as a file."""
    if path.is_dir():
        raise HadisError(f"{option} {path} is a directory; give a file name")
    if not path.parent.is_dir():
        raise HadisError(f"{option} {path}: folder {path.parent} does not exist")


def check_output_dir(path: Path, option: str) -> None:
    """Fail before any work when `path` exists and is not a folder."""
    if path.exists() and not path.is_dir():
        raise HadisError(f"{option} {path} exists and is not a folder")


def user_errors(fn: F) -> F:
    """Turn HadisError (bad input) into a one-line message and exit code 2, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HadisError as e:
            fail(str(e))
        except BrokenPipeError:  # e.g. `hadis ... | head`
            sys.stderr.close()

    return wrapper  # type: ignore[return-value]


SUMMARY_KEYS = (
    "violation_ratio",
    "quality",
    "served",
    "dropped",
    "late",
    "queries",
    "paths",
    "latency_p50_s",
    "latency_p99_s",
)


def summary_table(
    title: str, summaries: dict[str, dict[str, Any]], metric: str, first: str = "policy"
) -> Table:
    """One row per run: violation ratio, mean quality, served, dropped, late."""
    table = Table(
        first, "violation ratio", f"mean {metric}", "served", "dropped", "late", title=title
    )
    for label, s in summaries.items():
        q = "-" if s["quality"] is None else f"{s['quality']:.2f}"
        table.add_row(
            label,
            f"{s['violation_ratio']:.4f}",
            q,
            str(s["served"]),
            str(s["dropped"]),
            str(s["late"]),
        )
    return table
