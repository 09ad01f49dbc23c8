"""`hadis plan`: one planning decision, printed as a table or JSON."""

from __future__ import annotations

import json
import math

import typer
from rich.table import Table

from hadis.cli.common import PROFILE_OPTION, console, user_errors
from hadis.errors import HadisError
from hadis.planner import Plan, PlanRequest, get_policy, policy_names
from hadis.planner.hadis_policy import DEFAULT_SOLVER, TABLE_CHOICES
from hadis.profiles import load_profile


def plan_json(plan: Plan, profile_name: str, slo_s: float) -> dict:
    out = plan.to_dict()
    out.update(profile=profile_name, slo_s=slo_s)
    return out


def print_plan(plan: Plan, metric: str, slo_s: float) -> None:
    status = "[green]feasible[/]" if plan.feasible else "[red]infeasible (fallback)[/]"
    console.print(
        f"policy [bold]{plan.policy}[/]  pair [bold]{' -> '.join(plan.pair)}[/]  "
        f"r={plan.r:g} d={plan.d:g} f={plan.f:.3g}  {metric}={plan.quality:.2f}  {status}  "
        f"solve {plan.solve_ms:.1f} ms"
    )
    table = Table("model", "GPUs", "batch", "load q/s", "capacity q/s", "headroom")
    for m, g in plan.gpus.items():
        head = plan.headroom[m]
        table.add_row(
            m,
            str(g),
            str(plan.batch[m]),
            f"{plan.load_qps[m]:.3f}",
            f"{plan.capacity_qps[m]:.3f}",
            "-" if math.isinf(head) else f"{head:+.0%}",
        )
    console.print(table)
    paths = ", ".join(f"{k} {v:.1f}s" for k, v in plan.path_latency_s.items())
    console.print(f"predicted latency per path (SLO {slo_s:g}s): {paths}")
    if plan.split:
        console.print("split: " + ", ".join(f"{m} {s:.1%}" for m, s in plan.split.items()))
    if plan.shortfall_qps > 0:
        console.print(f"[red]expected shortfall: {plan.shortfall_qps:.3f} queries/s[/]")
    if plan.note:
        console.print(plan.note)


@user_errors
def plan_command(
    profile: str = PROFILE_OPTION,
    gpus: int = typer.Option(16, help="GPUs (workers) available."),
    slo: float = typer.Option(60.0, help="Latency SLO in seconds."),
    demand: float = typer.Option(..., help="Demand in queries per second."),
    policy: str = typer.Option("hadis", help=f"Planning policy: {', '.join(policy_names())}."),
    table: str = typer.Option(
        "full", help=f"Configuration rows the hadis policy may use: {', '.join(TABLE_CHOICES)}."
    ),
    solver: str = typer.Option(
        DEFAULT_SOLVER, help="hadis/diffserve solver: enumerate (exact, fast) or milp (HiGHS)."
    ),
    overprovision: float = typer.Option(1.05, help="Capacity margin over demand."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Choose pair, r, d, GPUs and batch sizes for a demand, under an SLO."""
    prof = load_profile(profile)
    options: dict = {}
    if policy == "hadis":
        options = {"table": table, "solver": solver}
    elif policy == "diffserve":
        options = {"solver": solver}
    pol = get_policy(policy, **options)
    if not math.isfinite(demand):
        raise HadisError(f"demand must be finite, got {demand}")
    req = PlanRequest(prof, gpus, slo, demand, overprovision=overprovision)
    result = pol.plan(req)
    if as_json:
        typer.echo(json.dumps(plan_json(result, prof.name, slo), indent=1))
    else:
        print_plan(result, prof.metric.name, slo)
