"""Run benchmarks and print their figures; optionally write one JSON report.

    python -m benchmarks.run [all | planner sim serve router ...] [--json OUT] [--tiny]

Every figure names its settings and, where one is set, its target with a pass/SHORT mark.
A benchmark whose timed work did not succeed fails the run (exit 1). `--tiny` runs each
in a seconds-long configuration (what the test suite does, so a broken benchmark fails CI).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from benchmarks import (
    overload_bench,
    planner_bench,
    ray_bench,
    robustness_bench,
    router_bench,
    serve_bench,
    sim_bench,
)
from benchmarks.report import BenchmarkFailed, Figure, machine, print_figures, write_report

SUITES: dict[str, Callable[[bool], list[Figure]]] = {
    "planner": planner_bench.run,
    "sim": sim_bench.run,
    "serve": serve_bench.run,
    "router": router_bench.run,
    "robustness": robustness_bench.run,
    "ray": ray_bench.run,
    "overload": overload_bench.run,
}


def run_suites(names: list[str], tiny: bool = False) -> tuple[list[Figure], list[str]]:
    """Figures of every suite that ran, and one line per suite that failed."""
    figures: list[Figure] = []
    failed: list[str] = []
    for name in names:
        print(f"\n{name}")
        try:
            got = SUITES[name](tiny)
        except BenchmarkFailed as exc:
            failed.append(f"{name}: {exc}")
            print(f"  FAILED: {exc}")
            continue
        except Exception as exc:  # a crash is a failure too, with its traceback
            traceback.print_exc()
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        print_figures(got)
        figures += got
    return figures, failed


def merge_report(path: Path, figures: list[Figure], names: list[str]) -> None:
    """Replace the figures of suites `names` in the report at `path` (the other suites'
    figures, and their machine line, stay as they were measured)."""
    report = json.loads(path.read_text(encoding="utf-8"))
    if report.get("tiny"):
        raise SystemExit(f"{path} is a --tiny report: rerun everything instead")
    kept = [f for f in report["figures"] if f["suite"] not in names]
    order = list(SUITES)  # figures stay grouped in the suites' order (a stable sort)
    merged = kept + [f.to_dict() for f in figures]
    report["figures"] = sorted(merged, key=lambda f: order.index(f["suite"]))
    have = set(report["suites"]) | set(names)
    report["suites"] = [s for s in SUITES if s in have]
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("suites", nargs="*", default=["all"], help=f"all or {', '.join(SUITES)}")
    parser.add_argument("--json", type=Path, help="write the report (machine, figures) here")
    parser.add_argument("--tiny", action="store_true", help="seconds-long configurations")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="with --json: replace only these suites' figures in the existing report",
    )
    args = parser.parse_args(argv)
    names = list(SUITES) if "all" in args.suites else args.suites
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; valid: all, {', '.join(SUITES)}")
    m = machine()
    print(
        f"machine: {m['machine']} {m['processor']} {m['cpus']} CPUs; Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    )
    figures, failed = run_suites(names, args.tiny)
    if args.json and args.merge and args.json.exists() and not failed:
        merge_report(args.json, figures, names)
        print(f"\nreport: {args.json} (merged: {', '.join(names)})")
    elif args.json:
        write_report(args.json, figures, names, args.tiny)
        print(f"\nreport: {args.json}")
    short = [f for f in figures if f.passed is False]
    print(f"\n{len(figures)} figures, {len(short)} short of target, {len(failed)} suites failed")
    for line in failed:
        print(f"failed: {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
