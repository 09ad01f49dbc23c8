"""`hadis plan`: one planning decision, printed as a table or JSON."""

from __future__ import annotations

import json
import math

import typer
from rich.table import Table

from hadis.cli.common import BATCH_WAIT_HELP, PROFILE_OPTION, console, user_errors
from hadis.core.plan import DEFAULT_BATCH_WAIT, DEFAULT_OVERPROVISION
from hadis.errors import HadisError
from hadis.planner import Plan, PlanRequest, get_policy, options_for, policy_names
from hadis.planner.hadis_policy import DEFAULT_SOLVER, TABLE_CHOICES
from hadis.planner.report import plan_report
from hadis.profiles import Profile, load_profile


def print_plan(plan: Plan, profile: Profile, slo_s: float, gpus: int) -> None:
    """The plan for a person: rounded numbers, the schema's names."""
    r = plan_report(plan, profile, slo_s=slo_s, gpus=gpus)
    q = r["quality"]
    status = "[green]feasible[/]" if plan.feasible else "[red]infeasible (fallback)[/]"
    if r["pair"]:
        what = f"cascade [bold]{r['light']} -> {r['heavy']}[/]  r={plan.r:.2g} d={plan.d:.2g}"
    elif r["split"]:
        what = "split: " + ", ".join(f"[bold]{m}[/] {s:.0%}" for m, s in r["split"].items())
    else:
        what = f"single model [bold]{r['single']}[/]"
    console.print(
        f"policy [bold]{plan.policy}[/]  {what}  {q['metric']} {q['value']:.2f} "
        f"({q['better']} is better)  {status}  solve {plan.solve_ms:.1f} ms"
    )
    table = Table("model", "GPUs", "batch", "s/batch", "load q/s", "capacity q/s", "headroom")
    for m, g in plan.gpus.items():
        head = plan.headroom[m]
        table.add_row(
            m,
            str(g),
            str(plan.batch[m]),
            f"{r['batch_latency_s'][m]:.2f}",
            f"{plan.load_qps[m]:.2f}",
            f"{plan.capacity_qps[m]:.2f}",
            "-" if math.isinf(head) else f"{head:+.0%}",
        )
    console.print(table)
    paths = ", ".join(f"{k} {v:.1f} s" for k, v in r["paths_s"].items())
    console.print(
        f"{gpus} GPUs, demand {plan.demand_qps:.2f} q/s; worst-case latency per path "
        f"(SLO {slo_s:g} s): {paths}",
        highlight=False,
    )
    if plan.shortfall_qps > 0:
        console.print(f"[red]expected shortfall: {plan.shortfall_qps:.2f} queries/s[/]")
    if plan.note:
        console.print(plan.note)


@user_errors
def plan_command(
    profile: str = PROFILE_OPTION,
    gpus: int | None = typer.Option(
        None, help="GPUs (workers) available (default: the profile's serving workers, else 16)."
    ),
    slo: float | None = typer.Option(
        None, help="Latency SLO in seconds (default: the profile's serving SLO, else 60)."
    ),
    demand: float = typer.Option(..., help="Demand in queries per second."),
    policy: str = typer.Option("hadis", help=f"Planning policy: {', '.join(policy_names())}."),
    table: str = typer.Option(
        "full", help=f"Configuration rows the hadis policy may use: {', '.join(TABLE_CHOICES)}."
    ),
    solver: str = typer.Option(
        DEFAULT_SOLVER, help="hadis/diffserve solver: enumerate (exact, fast) or milp (HiGHS)."
    ),
    overprovision: float = typer.Option(DEFAULT_OVERPROVISION, help="Capacity margin over demand."),
    batch_wait: float = typer.Option(DEFAULT_BATCH_WAIT, help=BATCH_WAIT_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Choose pair, r, d, GPUs and batch sizes for a demand, under an SLO."""
    prof = load_profile(profile)
    gpus = gpus if gpus is not None else prof.serving.workers or 16
    slo = slo if slo is not None else prof.serving.slo_s or 60.0
    pol = get_policy(policy, **options_for(policy, {"table": table, "solver": solver}))
    if not math.isfinite(demand):
        raise HadisError(f"demand must be finite, got {demand}")
    req = PlanRequest(prof, gpus, slo, demand, overprovision=overprovision, batch_wait=batch_wait)
    result = pol.plan(req)
    if as_json:
        typer.echo(json.dumps(plan_report(result, prof, slo_s=slo, gpus=gpus), indent=1))
    else:
        print_plan(result, prof, slo, gpus)
