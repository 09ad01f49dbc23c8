"""`hadis simulate`: replay a trace over a simulated cluster, HADIS against the baselines."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from hadis.cli.common import (
    BATCH_WAIT_HELP,
    DEVICE_MEMORY_OPTION,
    POINT_SECONDS_OPTION,
    PROFILE_OPTION,
    QPS_OPTION,
    SUMMARY_KEYS,
    TRACE_OPTION,
    check_output_dir,
    console,
    err_console,
    summary_table,
    user_errors,
    with_device_memory,
)
from hadis.cli.trace_cmd import DEFAULT_QPS, resolve_trace
from hadis.core import config as defaults
from hadis.errors import HadisError
from hadis.planner.hadis_policy import DEFAULT_SOLVER, SOLVERS, TABLE_CHOICES
from hadis.profiles import Direction, Profile, load_profile
from hadis.routing.registry import router_names
from hadis.sim.experiment import PAPER_POLICIES, check_policies, run_policies, save_results
from hadis.sim.plots import plot_results
from hadis.sim.report_page import report_data, write_report
from hadis.sim.simulator import WINDOW_S, SimConfig
from hadis.sim.trace import Trace

_JSON_KEYS = (*SUMMARY_KEYS, "utilisation", "plan_changes", "fluid_reference")


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
    qps: str | None = QPS_OPTION,
    point_seconds: float = POINT_SECONDS_OPTION,
    policies: str = typer.Option(",".join(PAPER_POLICIES), help="Comma-separated policies."),
    seed: int = typer.Option(0, help="Seed for arrivals, prompts, images and noise."),
    replan_period: float = typer.Option(
        defaults.REPLAN_PERIOD_S, help="Controller re-plan period (s)."
    ),
    window: float = typer.Option(WINDOW_S, help="Metrics window (s)."),
    drop_factor: float = typer.Option(
        defaults.DROP_FACTOR, help="Drop before execution past this x SLO."
    ),
    switch_delay: float = typer.Option(
        defaults.SWITCH_DELAY_S,
        help="Model switch time per worker (s), for models whose profile has no measured "
        "load time.",
    ),
    device_memory: float | None = DEVICE_MEMORY_OPTION,
    latency_noise: float = typer.Option(0.0, help="Sigma of lognormal batch-latency noise."),
    batch_wait: float = typer.Option(defaults.DEFAULT_BATCH_WAIT, help=BATCH_WAIT_HELP),
    table: str = typer.Option(
        "full", help=f"Rows the hadis policy uses: {', '.join(TABLE_CHOICES)}."
    ),
    solver: str = typer.Option(
        DEFAULT_SOLVER,
        help="hadis/diffserve planner: enumerate (exact, fast) or milp (HiGHS, same optimum).",
    ),
    router: str | None = typer.Option(
        None,
        help=f"Router: {', '.join(router_names())} (default: the paper's reference features, which "
        "need reference prompts; a trace with prompt texts needs online or random).",
    ),
    discriminator: str | None = typer.Option(
        None,
        help="Discriminator: reference, random, none (default: the paper's scores where the "
        "profile maps its models to them, random otherwise).",
    ),
    out: Path | None = typer.Option(
        None, help="Directory for CSV/JSON results, PNG plots and report.html (one page)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object keyed by policy."),
) -> None:
    """Replay a trace with each policy and print violations and served quality."""
    names = check_policies([p.strip() for p in policies.split(",") if p.strip()])
    if out is not None:
        check_output_dir(out, "--out")
    prof = with_device_memory(load_profile(profile), device_memory)
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
        batch_wait=batch_wait,
        policy_options={"table": table, "solver": solver},
    )
    tr = resolve_trace(trace, qps, point_seconds, seed)
    scorers = _scorers(router, discriminator, prof, seed)
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
            prof,
            tr,
            names,
            config,
            on_progress=lambda n, f: bar.update(tasks[n], completed=f),
            **scorers,
        )
    elapsed = time.perf_counter() - start
    failed = {n: s.error for n, s in summaries.items() if s.error is not None}
    ran = {n: s.to_dict() for n, s in summaries.items() if s.error is None}
    if ran:
        _report(
            ran,
            runs,
            failed,
            prof,
            tr,
            out,
            as_json,
            elapsed,
            run_config={
                "profile": prof.name,
                "trace": trace
                if trace != "azure-functions"
                else {
                    "azure-functions": {"qps": qps or DEFAULT_QPS, "point_seconds": point_seconds}
                },
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
                "device_memory_gib": prof.device_memory_gib,
                "latency_noise": latency_noise,
                "batch_wait": batch_wait,
                "table": table,
                "solver": solver,
                "router": router,
                "discriminator": discriminator,
            },
        )
    if failed:
        name, message = next(iter(failed.items()))
        others = f" ({len(failed) - 1} more failed)" if len(failed) > 1 else ""
        raise HadisError(f"policy {name} could not run: {message}{others}")


def _scorers(router: str | None, discriminator: str | None, prof: Profile, seed: int) -> dict:
    from hadis.routing.simple import make_discriminator, make_router

    out: dict = {}
    if router is not None:
        out["router"] = make_router(router, seed)
    if discriminator is not None:
        if discriminator.startswith("trained:"):
            raise HadisError("--discriminator trained:PATH scores images; the simulator has none")
        out["discriminator"] = make_discriminator(discriminator, prof, seed)
    return out


def _report(
    summaries: dict,
    runs: dict,
    failed: dict,
    prof: Profile,
    tr: Trace,
    out: Path | None,
    as_json: bool,
    elapsed: float,
    run_config: dict,
) -> None:
    gpus, slo, seed = run_config["gpus"], run_config["slo_s"], run_config["seed"]
    metric = prof.metric
    title = (
        f"{prof.name}, {tr.name}: {len(tr)} queries over {tr.duration_s:.0f} s, {gpus} GPUs, "
        f"SLO {slo:g} s, seed {seed} ({metric.name}: {metric.direction.value} is better)"
    )
    if out is not None:
        save_results(out, summaries, runs, run_config)
        plot_results(
            out,
            summaries,
            metric.name,
            [m.name for m in prof.models],
            title=title,
            lower_is_better=metric.direction is Direction.LOWER,
        )
        write_report(
            out,
            report_data(
                title,
                run_config,
                summaries,
                metric.name,
                lower_is_better=metric.direction is Direction.LOWER,
            ),
        )
    if as_json:
        report = {n: {k: s.get(k) for k in _JSON_KEYS if k in s} for n, s in summaries.items()}
        report.update({n: {"error": e} for n, e in failed.items()})
        typer.echo(json.dumps(report, indent=1))
        return
    labelled = {
        (f"{n} (reference)" if s.get("fluid_reference") else n): s for n, s in summaries.items()
    }
    console.print(summary_table(title, labelled, metric.name))
    console.print(f"simulated in {elapsed:.1f} s" + (f"; results in {out}/" if out else ""))
