"""`hadis simulate`: replay a trace over a simulated cluster, HADIS against the baselines."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from hadis.cli.common import (
    POINT_SECONDS_OPTION,
    PROFILE_OPTION,
    QPS_OPTION,
    SUMMARY_KEYS,
    TRACE_OPTION,
    console,
    err_console,
    summary_table,
    user_errors,
)
from hadis.cli.trace_cmd import resolve_trace
from hadis.errors import HadisError
from hadis.planner.hadis_policy import DEFAULT_SOLVER, SOLVERS, TABLE_CHOICES
from hadis.profiles import load_profile
from hadis.sim.experiment import PAPER_POLICIES, check_policies, run_policies, save_results
from hadis.sim.plots import plot_results
from hadis.sim.simulator import SimConfig

_JSON_KEYS = (*SUMMARY_KEYS, "utilisation", "plan_changes", "fluid_bound")


@user_errors
def simulate_command(
    profile: str = PROFILE_OPTION,
    gpus: int | None = typer.Option(
        None, help="Simulated GPUs (workers) (default: the profile's serving workers, else 16)."
    ),
    slo: float | None = typer.Option(
        None, help="Latency SLO in seconds (default: the profile's serving SLO, else 60)."
    ),
    trace: str = TRACE_OPTION,
    qps: str = QPS_OPTION,
    point_seconds: float = POINT_SECONDS_OPTION,
    policies: str = typer.Option(",".join(PAPER_POLICIES), help="Comma-separated policies."),
    seed: int = typer.Option(0, help="Seed for arrivals, prompts, images and noise."),
    replan_period: float = typer.Option(50.0, help="Controller re-plan period (s)."),
    window: float = typer.Option(50.0, help="Metrics window (s)."),
    drop_factor: float = typer.Option(1.5, help="Drop before execution past this x SLO."),
    switch_delay: float = typer.Option(3.0, help="Model switch time per worker (s)."),
    latency_noise: float = typer.Option(0.0, help="Sigma of lognormal batch-latency noise."),
    table: str = typer.Option(
        "full", help=f"Rows the hadis policy uses: {', '.join(TABLE_CHOICES)}."
    ),
    solver: str = typer.Option(
        DEFAULT_SOLVER,
        help="hadis/diffserve planner: enumerate (exact, fast) or milp (HiGHS, same optimum).",
    ),
    out: Path | None = typer.Option(None, help="Directory for CSV/JSON results and PNG plots."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object keyed by policy."),
) -> None:
    """Replay a trace with each policy and print violations and served quality."""
    names = check_policies([p.strip() for p in policies.split(",") if p.strip()])
    prof = load_profile(profile)
    gpus = gpus if gpus is not None else prof.serving.workers or 16
    slo = slo if slo is not None else prof.serving.slo_s or 60.0
    if solver not in SOLVERS:
        raise HadisError(f"unknown solver {solver!r}; valid: {', '.join(SOLVERS)}")
    if table not in TABLE_CHOICES:
        raise HadisError(f"unknown table {table!r}; valid: {', '.join(TABLE_CHOICES)}")
    if not slo > 0:
        raise HadisError(f"slo must be > 0 seconds, got {slo}")
    config = SimConfig(
        gpus=gpus,
        slo_s=slo,
        seed=seed,
        replan_period_s=replan_period,
        window_s=window,
        drop_factor=drop_factor,
        switch_delay_s=switch_delay,
        latency_noise=latency_noise,
        check_s=min(10.0, replan_period),
        policy_options={"table": table, "solver": solver},
    )
    tr = resolve_trace(trace, qps, point_seconds, seed)
    start = time.perf_counter()
    with Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=as_json,
    ) as bar:
        tasks = {n: bar.add_task(n, total=1.0) for n in names}
        summaries, runs = run_policies(
            prof, tr, names, config, on_progress=lambda n, f: bar.update(tasks[n], completed=f)
        )
    elapsed = time.perf_counter() - start
    if out is not None:
        run_config = {
            "profile": prof.name,
            "trace": trace
            if trace != "azure-functions"
            else {"azure-functions": {"qps": qps, "point_seconds": point_seconds}},
            "queries": len(tr),
            "duration_s": tr.duration_s,
            "policies": names,
            "gpus": gpus,
            "slo_s": slo,
            "seed": seed,
            "replan_period_s": replan_period,
            "window_s": window,
            "drop_factor": drop_factor,
            "switch_delay_s": switch_delay,
            "latency_noise": latency_noise,
            "table": table,
        }
        save_results(out, summaries, runs, run_config)
        plot_results(out, summaries, prof.metric.name, [m.name for m in prof.models])
    if as_json:
        typer.echo(
            json.dumps(
                {n: {k: s.get(k) for k in _JSON_KEYS if k in s} for n, s in summaries.items()},
                indent=1,
            )
        )
        return
    metric = prof.metric
    labelled = {
        (f"{n} (fluid bound)" if s.get("fluid_bound") else n): s for n, s in summaries.items()
    }
    title = (
        f"{tr.name}: {len(tr)} queries over {tr.duration_s:.0f} s, {gpus} GPUs, "
        f"SLO {slo:g} s, seed {seed} ({metric.name}: {metric.direction.value} is better)"
    )
    console.print(summary_table(title, labelled, metric.name))
    console.print(f"simulated in {elapsed:.1f} s" + (f"; results in {out}/" if out else ""))
