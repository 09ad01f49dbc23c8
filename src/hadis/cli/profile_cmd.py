"""`hadis profile ...`: inspect model-pool profiles."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from hadis.cli.common import console, user_errors
from hadis.profiles import bundled_profiles, load_profile, pareto_table
from hadis.profiles.io import config_row_dict

app = typer.Typer(help="Inspect model-pool profiles (list, show).", no_args_is_help=True)


@app.command("list")
@user_errors
def list_command() -> None:
    """List the profiles bundled with hadis."""
    for name in bundled_profiles():
        p = load_profile(name)
        typer.echo(f"{name}\t{len(p.models)} models, {len(p.configs)} configs, {p.gpu_type}")


@app.command("show")
@user_errors
def show_command(
    profile: str = typer.Argument(..., help="Bundled profile name or profile file."),
    all_pairs: bool = typer.Option(
        False, "--all-pairs", help="Pareto front over every pair (default: adjacent pairs)."
    ),
    per_pair: bool = typer.Option(False, "--per-pair", help="One front per pair."),
    as_json: bool = typer.Option(False, "--json", help="Print the Pareto rows as JSON."),
) -> None:
    """Print the model pool and the Pareto table of a profile."""
    p = load_profile(profile)
    rows = pareto_table(p, per_pair=per_pair, adjacent_only=not all_pairs)
    if as_json:
        typer.echo(json.dumps([config_row_dict(r) for r in rows], indent=1))
        return
    console.print(f"[bold]{p.name}[/] on {p.gpu_type}: {p.description}")
    console.print(f"provenance: {p.provenance}", highlight=False)
    pool = Table("model", "steps", "guidance", "resolution", "s/image (b=1)", p.metric.name)
    for m in p.models:
        pool.add_row(
            m.name,
            str(m.steps),
            f"{m.guidance:g}",
            "x".join(map(str, m.resolution)),
            f"{m.latency_s[1]:g}",
            f"{m.quality_alone:g}",
        )
    console.print(pool)
    scope = "all pairs" if all_pairs else "adjacent pairs"
    front = Table(
        "light",
        "heavy",
        "r",
        "d",
        "f",
        "E[T] s",
        p.metric.name,
        title=f"Pareto table ({scope}{', per pair' if per_pair else ''}): {len(rows)} rows "
        f"of {len(p.configs)}; {p.metric.name} {p.metric.direction.value} is better",
    )
    for r in rows:
        front.add_row(
            r.light,
            r.heavy,
            f"{r.r:g}",
            f"{r.d:g}",
            f"{r.f:.2f}",
            f"{r.latency_s:.2f}",
            f"{r.quality:.2f}",
        )
    console.print(front)
