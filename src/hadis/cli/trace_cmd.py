"""`hadis trace ...`: generate workload traces as CSV."""

from __future__ import annotations

from pathlib import Path

import typer

from hadis.cli.common import check_output_file, console, user_errors
from hadis.errors import HadisError
from hadis.sim.trace import (
    Trace,
    azure_functions,
    bursty,
    constant,
    load_trace_csv,
    parse_levels,
    step,
    write_trace_csv,
)

app = typer.Typer(
    help="Generate workload traces (CSV: arrival_s, prompt_id).", no_args_is_help=True
)


def parse_range(text: str) -> tuple[float, float]:
    """'1.0:6.4' -> (1.0, 6.4)."""
    try:
        lo, hi = (float(x) for x in text.split(":"))
    except ValueError:
        raise HadisError(f"--qps must look like MIN:MAX (e.g. 1.0:6.4), got {text!r}") from None
    return lo, hi


DEFAULT_QPS = "1.0:6.4"


def resolve_trace(trace: str, qps: str | None, point_seconds: float, seed: int) -> Trace:
    """A trace CSV file, or 'azure-functions' built from --qps (MIN:MAX, default 1.0:6.4)
    and --point-seconds. With a CSV file, --qps RATE time-stretches it to that mean rate
    (same queries, same burst shape); MIN:MAX is refused there."""
    if trace == "azure-functions":
        lo, hi = parse_range(qps or DEFAULT_QPS)
        return azure_functions(lo, hi, point_seconds, seed)
    loaded = load_trace_csv(trace, seed=seed)
    if qps is None:
        return loaded
    if ":" in qps:
        raise HadisError(
            f"--qps {qps}: with a trace file, give one mean rate (e.g. --qps 3) to "
            "time-stretch it to; MIN:MAX only shapes the azure-functions trace"
        )
    try:
        rate = float(qps)
    except ValueError:
        raise HadisError(
            f"--qps must be a number of queries/s for a trace file, got {qps!r}"
        ) from None
    return loaded.with_mean_rate(rate)


def _write(trace: Trace, out: Path) -> None:
    check_output_file(out, "--out")
    write_trace_csv(trace, out)
    console.print(
        f"wrote {out}: {len(trace)} queries over {trace.duration_s:.0f} s "
        f"(mean {len(trace) / max(trace.duration_s, 1e-9):.2f} q/s)"
    )


OUT = typer.Option(..., "-o", "--out", help="CSV file to write.")


@app.command("azure-functions")
@user_errors
def azure_command(
    qps: str = typer.Option("1.0:6.4", help="Min:max queries/s the shape is rescaled to."),
    point_seconds: float = typer.Option(10.0, help="Seconds per point of the shape."),
    seed: int = typer.Option(0, help="Random seed (arrivals and prompts)."),
    out: Path = OUT,
) -> None:
    """The paper's workload: the Azure Functions 2019 shape, Poisson arrivals per point."""
    lo, hi = parse_range(qps)
    _write(azure_functions(lo, hi, point_seconds, seed), out)


@app.command("constant")
@user_errors
def constant_command(
    qps: float = typer.Option(..., help="Queries per second."),
    seconds: float = typer.Option(..., help="Duration in seconds."),
    seed: int = typer.Option(0, help="Random seed."),
    out: Path = OUT,
) -> None:
    """Poisson arrivals at a constant rate."""
    _write(constant(qps, seconds, seed), out)


@app.command("step")
@user_errors
def step_command(
    levels: str = typer.Option(..., help="QPS:SECONDS segments, e.g. 1:300,5:300,2:300."),
    seed: int = typer.Option(0, help="Random seed."),
    out: Path = OUT,
) -> None:
    """Consecutive constant-rate segments (a step change in demand)."""
    _write(step(parse_levels(levels), seed), out)


@app.command("bursty")
@user_errors
def bursty_command(
    qps: float = typer.Option(..., help="Long-run mean queries per second."),
    seconds: float = typer.Option(..., help="Duration in seconds."),
    burstiness: float = typer.Option(
        4.0, help="Rate in a burst over the calm rate (1: plain Poisson)."
    ),
    burst_seconds: float = typer.Option(30.0, help="Mean length of a burst (s)."),
    calm_seconds: float = typer.Option(90.0, help="Mean length of a calm period (s)."),
    seed: int = typer.Option(0, help="Random seed."),
    out: Path = OUT,
) -> None:
    """Bursty arrivals: a two-state Markov-modulated Poisson process (calm and bursts)."""
    _write(
        bursty(
            qps,
            seconds,
            burstiness=burstiness,
            burst_s=burst_seconds,
            calm_s=calm_seconds,
            seed=seed,
        ),
        out,
    )
