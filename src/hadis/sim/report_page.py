"""report.html: one self-contained page per simulation (settings, the results table, and
per-window time series of every policy, hoverable), written by `hadis simulate --out`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hadis import web

COLUMNS = (  # header, summary key, numeric, digits
    ("policy", "label", False, 0),
    ("violation ratio", "violation_ratio", True, 4),
    ("mean {metric}", "quality", True, 2),
    ("served", "served", True, 0),
    ("dropped", "dropped", True, 0),
    ("late", "late", True, 0),
    ("latency p50 (s)", "latency_p50_s", True, 2),
    ("latency p99 (s)", "latency_p99_s", True, 2),
)


def report_data(
    title: str,
    settings: dict[str, Any],
    summaries: dict[str, dict[str, Any]],
    metric: str,
    lower_is_better: bool,
) -> dict[str, Any]:
    labels = {
        name: f"{name} (reference)" if s.get("fluid_reference") else name
        for name, s in summaries.items()
    }
    first = next(iter(summaries.values()))
    xs = [w["start_s"] for w in first["windows"]]

    def series(key: str) -> dict[str, list[Any]]:
        out = {}
        for name, s in summaries.items():
            by_start = {w["start_s"]: w.get(key) for w in s["windows"]}
            out[labels[name]] = [by_start.get(x) for x in xs]
        return out

    gpus: dict[str, list[Any]] = {}
    main = summaries.get("hadis", first)
    for i, w in enumerate(main["windows"]):
        for model, n in (w.get("gpus") or {}).items():
            gpus.setdefault(model, [0] * len(xs))[i] = n
    better = "lower" if lower_is_better else "higher"
    return {
        "title": title,
        "settings": settings,
        "note": f"{metric}: {better} is better. A reference row is not a policy: "
        "see docs/simulator.md.",
        "columns": [(h.format(metric=metric), key, num, digits) for h, key, num, digits in COLUMNS],
        "rows": [
            {"label": labels[name], **{k: s.get(k) for _, k, _, _ in COLUMNS[1:]}}
            for name, s in summaries.items()
        ],
        "xs": xs,
        "charts": [
            {
                "id": "demand",
                "title": "Demand (queries/s)",
                "unit": "q/s",
                "series": {"demand": [w.get("demand_qps") for w in first["windows"]]},
            },
            {
                "id": "violations",
                "title": "SLO violation ratio per window",
                "unit": "",
                "series": series("violation_ratio"),
            },
            {
                "id": "quality",
                "title": f"Mean {metric} per window ({better} is better)",
                "unit": "",
                "series": series("quality"),
            },
            {
                "id": "gpus",
                "title": f"GPUs per model ({labels.get('hadis', next(iter(labels.values())))})",
                "unit": "GPUs",
                "stacked": True,
                "series": gpus,
            },
        ],
    }


def write_report(out: Path, data: dict[str, Any]) -> Path:
    path = Path(out) / "report.html"
    path.write_text(web.page("report", data), encoding="utf-8")
    return path
