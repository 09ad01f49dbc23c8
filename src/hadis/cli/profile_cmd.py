"""`hadis profile ...`: inspect model-pool profiles."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.progress import TaskID
from rich.table import Table

from hadis.cli.common import check_output_file, console, err_console, user_errors
from hadis.errors import HadisError
from hadis.profiles import bundled_profiles, load_profile, pareto_table
from hadis.profiles.io import config_row_dict
from hadis.textfiles import read_text

app = typer.Typer(
    help="Model-pool profiles: list, show, build, import, validate.", no_args_is_help=True
)


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
            "-" if m.steps is None else str(m.steps),
            "-" if m.guidance is None else f"{m.guidance:g}",
            "-" if m.resolution is None else "x".join(map(str, m.resolution)),
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


@app.command("build")
@user_errors
def build_command(
    pool: Path = typer.Option(..., help="Pool file (YAML or JSON): the variants to profile."),
    prompts: Path = typer.Option(..., help="Prompt file, one prompt per line."),
    reference: Path = typer.Option(..., help="Folder of reference (real) images for FID."),
    out: Path = typer.Option(..., help="Profile file to write (JSON)."),
    workdir: Path | None = typer.Option(
        None, help="Cache of latencies, images and scores (default: OUT.work); reruns resume."
    ),
    router: str = typer.Option(
        "online", help="Router scoring the prompts: online, learned:PATH, random."
    ),
    discriminator: str = typer.Option(
        "random", help="Discriminator scoring light images: trained:PATH, random."
    ),
    features: str = typer.Option(
        "pixel", help="FID features: pixel (mean colours on a grid) or world (demo world)."
    ),
    grid_step: float = typer.Option(0.1, help="Step of the r and d grids."),
    repeats: int = typer.Option(3, help="Timed runs per batch size (after one warm-up)."),
    max_prompts: int | None = typer.Option(None, help="Use only the first N prompts."),
) -> None:
    """Measure a pool (latency per batch size, images, scores, FID per (r, d)) into a profile."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from hadis.profiling import build_profile, load_pool
    from hadis.profiling.features import make_extractor

    if not 0 < grid_step <= 1:
        raise HadisError(f"grid step must be in (0, 1], got {grid_step}")
    spec = load_pool(pool)
    lines = [p for p in read_text(prompts, "prompt file").splitlines() if p.strip()]
    if max_prompts is not None:
        lines = lines[:max_prompts]
    if not reference.is_dir():
        raise HadisError(f"not a folder: {reference}")
    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        profile = build_profile(
            spec,
            lines,
            reference,
            workdir or out.with_suffix(".work"),
            out,
            router=router,
            discriminator=discriminator,
            grid_step=grid_step,
            repeats=repeats,
            extractor=make_extractor(features),
            progress=report,
        )
    front = pareto_table(profile, per_pair=False)
    console.print(
        f"wrote {out}: {len(profile.models)} models, {len(profile.configs)} "
        f"configurations, {len(front)} on the Pareto front"
    )


@app.command("import")
@user_errors
def import_command(
    latencies: Path = typer.Option(..., help="CSV with columns model,batch,seconds."),
    quality: Path = typer.Option(..., help="CSV with columns light,heavy,r,d,quality."),
    name: str = typer.Option(..., help="Name of the profile."),
    out: Path = typer.Option(..., "-o", "--out", help="Profile file to write (JSON)."),
    metric: str = typer.Option("FID", help="Name of the quality metric."),
    higher_is_better: bool = typer.Option(
        False, "--higher-is-better", help="The metric is better when larger (default: lower)."
    ),
    gpu_type: str = typer.Option("unspecified", help="What the latencies were measured on."),
    slo: float | None = typer.Option(None, help="Default SLO in seconds (serving.slo_s)."),
    workers: int | None = typer.Option(None, help="Default GPUs/workers (serving.workers)."),
    description: str = typer.Option("", help="One line about the pool."),
) -> None:
    """Build a profile from a latency table and a quality table (docs/profile-format.md)."""
    from hadis.profiles import Direction, save_profile
    from hadis.profiles.lint import check_document
    from hadis.profiles.tables import profile_from_tables

    if slo is not None and not slo > 0:
        raise HadisError(f"--slo must be > 0 seconds, got {slo}")
    if workers is not None and workers < 1:
        raise HadisError(f"--workers must be >= 1, got {workers}")
    check_output_file(out, "--out")
    profile = profile_from_tables(
        latencies,
        quality,
        name=name,
        metric=metric,
        direction=Direction.HIGHER if higher_is_better else Direction.LOWER,
        gpu_type=gpu_type,
        slo_s=slo,
        workers=workers,
        description=description,
    )
    save_profile(profile, out)
    for issue in check_document(json.loads(out.read_text(encoding="utf-8"))):
        err_console.print(str(issue), highlight=False, markup=False, soft_wrap=True)
    console.print(
        f"wrote {out}: {len(profile.models)} models, {len(profile.configs)} configurations, "
        f"{len(profile.pairs)} pairs",
        highlight=False,
        soft_wrap=True,
    )


@app.command("validate")
@user_errors
def validate_command(
    file: Path = typer.Argument(..., help="Profile file (JSON or YAML)."),
) -> None:
    """Check a profile file: one line per problem; exit 2 on any error, 0 otherwise."""
    from hadis.documents import read_document
    from hadis.errors import ProfileError
    from hadis.profiles.lint import check_document

    issues = check_document(read_document(file, "profile", ProfileError))
    for issue in issues:
        err_console.print(str(issue), highlight=False, markup=False, soft_wrap=True)
    errors = sum(1 for i in issues if i.level == "error")
    if errors:
        raise typer.Exit(2)
    p = load_profile(file)
    console.print(
        f"{file}: valid ({len(p.models)} models, {len(p.configs)} configurations"
        f"{f', {len(issues)} warning(s)' if issues else ''})",
        highlight=False,
    )
