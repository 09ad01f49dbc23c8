"""Run several policies on one trace (the paper's end-to-end experiment) and save results."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hadis.core import RunSummary
from hadis.engine.metrics import config_label, plan_timeline
from hadis.errors import HadisError
from hadis.planner import options_for, policy_names
from hadis.profiles import Profile
from hadis.routing import Discriminator, Router
from hadis.sim.oracle import oracle_reference
from hadis.sim.simulator import SimConfig, SimResult, simulate
from hadis.sim.trace import Trace

ORACLE = "oracle"
PAPER_POLICIES = (
    "hadis",
    "diffserve",
    "proteus",
    "infaas-acc",
    "clipper-light",
    "clipper-heavy",
    ORACLE,
)


def check_policies(policies: Sequence[str]) -> list[str]:
    valid = [*policy_names(), ORACLE]
    unknown = [p for p in policies if p not in valid]
    if unknown:
        raise HadisError(f"unknown policy {unknown[0]!r}; valid: {', '.join(valid)}")
    if not policies:
        raise HadisError("give at least one policy")
    return list(dict.fromkeys(policies))


def run_policies(
    profile: Profile,
    trace: Trace,
    policies: Sequence[str],
    config: SimConfig,
    on_progress: Callable[[str, float], None] | None = None,
    router: Router | None = None,
    discriminator: Discriminator | None = None,
) -> tuple[dict[str, RunSummary], dict[str, SimResult]]:
    """Summaries keyed by policy (oracle included when asked), and the raw runs.

    A policy that cannot run on this profile (HadisError, e.g. DiffServe without
    discriminator-only rows) gets a failed summary (its `error` set) and the others still
    run."""
    summaries: dict[str, RunSummary] = {}
    runs: dict[str, SimResult] = {}
    for name in check_policies(policies):
        try:
            if name == ORACLE:
                summaries[name] = oracle_reference(
                    profile,
                    trace,
                    gpus=config.gpus,
                    slo_s=config.slo_s,
                    window_s=config.window_s,
                    table=config.policy_options.get("table", "full"),
                )
            else:
                runs[name] = _simulate_one(
                    name, profile, trace, config, on_progress, router, discriminator
                )
                summaries[name] = runs[name].summary
        except HadisError as e:
            summaries[name] = RunSummary.failed(name, str(e))
        if on_progress:
            on_progress(name, 1.0)
    return summaries, runs


def _simulate_one(
    name: str,
    profile: Profile,
    trace: Trace,
    config: SimConfig,
    on_progress: Callable[[str, float], None] | None,
    router: Router | None,
    discriminator: Discriminator | None,
) -> SimResult:
    options = options_for(name, config.policy_options)
    cfg = SimConfig(**{**asdict(config), "policy_options": options})
    return simulate(
        profile,
        trace,
        name,
        cfg,
        router=router,
        discriminator=discriminator,
        progress=(lambda f: on_progress(name, f)) if on_progress else None,
    )


def save_results(
    out: Path,
    summaries: dict[str, dict[str, Any]],
    runs: dict[str, SimResult],
    run_config: dict[str, Any],
) -> list[Path]:
    """summary.json, windows.csv, queries_<policy>.csv, plans_<policy>.csv and config.json
    under `out` (`summaries` in their JSON form: RunSummary.to_dict)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    path = out / "config.json"
    path.write_text(json.dumps(run_config, indent=1) + "\n")
    written.append(path)
    path = out / "summary.json"
    path.write_text(json.dumps(summaries, indent=1, default=str) + "\n")
    written.append(path)
    written.append(_write_csv(out / "windows.csv", WINDOW_COLUMNS, _window_rows(summaries)))
    slo = run_config["slo_s"]
    for policy, run in runs.items():
        queries = _query_rows(run, slo)
        written.append(_write_csv(out / f"queries_{policy}.csv", QUERY_COLUMNS, queries))
        written.append(_write_csv(out / f"plans_{policy}.csv", PLAN_COLUMNS, _plan_rows(run)))
    return written


WINDOW_COLUMNS = (
    "policy",
    "start_s",
    "queries",
    "demand_qps",
    "served",
    "dropped",
    "late",
    "violation_ratio",
    "quality",
    "utilisation",
    "gpus",
    "config",
)
QUERY_COLUMNS = (
    "qid",
    "prompt_id",
    "arrival_s",
    "start_s",
    "finish_s",
    "path",
    "pair",
    "status",
    "late",
    "drop_reason",
)
# every change of plan the run adopted: when, why the controller re-planned (start,
# period, backlog, workers), what it runs, the demand it was made for and the capacity
# and quality it promises
PLAN_COLUMNS = (
    "time_s",
    "reason",
    "config",
    "gpus",
    "batch",
    "demand_qps",
    "capacity_qps",
    "quality",
    "feasible",
    "note",
)


def _write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        w.writerows(rows)
    return path


def _window_rows(summaries: dict[str, dict[str, Any]]) -> Iterator[list[Any]]:
    for policy, s in summaries.items():
        for row in s["windows"]:
            yield [
                policy,
                row["start_s"],
                row["queries"],
                f"{row['demand_qps']:.4f}",
                f"{row['served']:.0f}",
                f"{row['dropped']:.0f}",
                row["late"],
                f"{row['violation_ratio']:.6f}",
                "" if row["quality"] is None else f"{row['quality']:.4f}",
                f"{row.get('utilisation', float('nan')):.4f}",
                json.dumps(row["gpus"], sort_keys=True),
                row["config"],
            ]


def _query_rows(run: SimResult, slo_s: float) -> Iterator[list[Any]]:
    for q in sorted(run.recorder.queries, key=lambda q: q.qid):
        finish = q.finish_s
        late = q.status == "served" and finish is not None and finish - q.arrival_s > slo_s + 1e-9
        yield [
            q.qid,
            q.prompt_id,
            f"{q.arrival_s:.4f}",
            "" if q.start_s is None else f"{q.start_s:.4f}",
            f"{q.finish_s:.4f}",
            q.path,
            "->".join(q.pair),
            q.status,
            int(late),
            q.drop_reason,
        ]


def _plan_rows(run: SimResult) -> Iterator[list[Any]]:
    plans, reasons = run.recorder.plans, run.recorder.reasons
    for i in plan_timeline(plans):
        at, p = plans[i]
        yield [
            f"{at:.4f}",
            reasons[i] if i < len(reasons) else "",
            config_label(p),
            json.dumps(dict(p.gpus), sort_keys=True),
            json.dumps(dict(p.batch), sort_keys=True),
            f"{p.demand_qps:.4f}",
            f"{p.carried_qps:.4f}",
            f"{p.quality:.4f}",
            int(p.feasible),
            p.note,
        ]
