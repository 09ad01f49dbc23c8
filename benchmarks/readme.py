"""Regenerate the README's performance table from a benchmark report:

    python -m benchmarks.run all --json benchmarks/results/report.json
    python -m benchmarks.readme benchmarks/results/report.json

The table sits between the markers below; tests check it matches the committed report.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks.report import markdown_table

README = Path(__file__).resolve().parent.parent / "README.md"
REPORT = Path(__file__).resolve().parent / "results" / "report.json"
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"


def render(report_path: Path = REPORT) -> str:
    return markdown_table(json.loads(report_path.read_text(encoding="utf-8")))


def update(readme: Path = README, report_path: Path = REPORT) -> None:
    text = readme.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{render(report_path)}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    update(report_path=Path(sys.argv[1]) if len(sys.argv) > 1 else REPORT)
