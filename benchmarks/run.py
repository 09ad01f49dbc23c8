"""Run every benchmark and print the numbers:  python -m benchmarks.run [planner|sim ...]"""

from __future__ import annotations

import os
import platform
import sys

import scipy

from benchmarks import planner_bench, serve_bench, sim_bench

SUITES = {
    "planner": planner_bench.main,
    "sim": sim_bench.main,
    "serve": serve_bench.main,
    "router": lambda: __import__("benchmarks.router_bench").router_bench.main(),
}


def main(argv: list[str]) -> None:
    wanted = argv or list(SUITES)
    unknown = [w for w in wanted if w not in SUITES]
    if unknown:
        sys.exit(f"unknown benchmark(s) {unknown}; valid: {', '.join(SUITES)}")
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs; "
        f"Python {platform.python_version()}; scipy {scipy.__version__}"
    )
    for name in wanted:
        print()
        SUITES[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
