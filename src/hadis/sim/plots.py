"""PNG plots of an experiment: time series per policy, GPUs per model, and the averages.

Every figure carries a title naming the pool, the workload, the GPUs and the SLO; quality
axes say which way is better; violation ratios use a symmetric-log scale so that 0.0001
and 0.0025 stay apart; legends sit outside the data; policies differ by colour, line
style and marker so that overlapping lines stay distinguishable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

_STYLES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "v", "D", "x", "+", "*")
VIOLATION_LINTHRESH = 1e-4  # linear below, logarithmic above


def _series(summary: dict[str, Any], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for w in summary["windows"]:
        if w.get(key) is not None:
            xs.append(w["start_s"])
            ys.append(w[key])
    return xs, ys


def _style(i: int, fluid: bool) -> dict[str, Any]:
    return {
        "color": f"C{i % 10}",
        "linestyle": ":" if fluid else _STYLES[i % 3],
        "marker": _MARKERS[i % len(_MARKERS)],
        "markevery": 0.1,
        "markersize": 4,
        "linewidth": 1.3,
    }


def plot_results(
    out: Path,
    summaries: dict[str, dict[str, Any]],
    metric: str,
    models: list[str],
    *,
    title: str = "",
    lower_is_better: bool = True,
) -> list[Path]:
    """timeseries.png, gpus.png and averages.png under `out`; `title` names the run."""
    out.mkdir(parents=True, exist_ok=True)
    better = "lower is better" if lower_is_better else "higher is better"
    written = []
    first = next(iter(summaries.values()))
    fig, axes = plt.subplots(3, 1, figsize=(11, 9), sharex=True)
    xs, ys = _series(first, "demand_qps")
    axes[0].plot(xs, ys, color="black")
    axes[0].set_ylabel("demand (q/s)")
    for i, (policy, s) in enumerate(summaries.items()):
        style = _style(i, bool(s.get("fluid_reference")))
        axes[1].plot(*_series(s, "quality"), label=policy, **style)
        axes[2].plot(*_series(s, "violation_ratio"), label=policy, **style)
    axes[1].set_ylabel(f"served {metric}\n({better})")
    axes[2].set_ylabel("SLO violation ratio\n(symlog)")
    axes[2].set_yscale("symlog", linthresh=VIOLATION_LINTHRESH)
    axes[2].set_xlabel("time (s)")
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.suptitle(title or "simulation", fontsize=10)
    fig.tight_layout()
    path = out / "timeseries.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    fig, axes = plt.subplots(len(models), 1, figsize=(11, 1.6 + 1.9 * len(models)), sharex=True)
    axes = [axes] if len(models) == 1 else list(axes)
    for ax, model in zip(axes, models, strict=True):
        for i, (policy, s) in enumerate(summaries.items()):
            if s.get("fluid_reference"):
                continue
            xs = [w["start_s"] for w in s["windows"]]
            ys = [w["gpus"].get(model, 0) for w in s["windows"]]
            ax.step(xs, ys, where="post", label=policy, **_style(i, False))
        ax.set_ylabel(f"GPUs\n{model}", fontsize=8)
    axes[0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(f"GPUs per model over time: {title}" if title else "GPUs per model", fontsize=10)
    fig.tight_layout()
    path = out / "gpus.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    names = list(summaries)
    quality = [summaries[n]["quality"] or 0.0 for n in names]
    violations = [summaries[n]["violation_ratio"] for n in names]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    bars = ax1.bar(names, quality, color="tab:blue")
    ax1.bar_label(bars, fmt="%.2f", fontsize=8)
    ax1.set_ylim(min(quality) * 0.9, max(quality) * 1.05)
    ax1.set_ylabel(f"mean served {metric} ({better})")
    bars = ax2.bar(names, violations, color="tab:red")
    ax2.bar_label(bars, fmt="%.4f", fontsize=8)
    ax2.set_yscale("symlog", linthresh=VIOLATION_LINTHRESH)
    ax2.set_ylim(0, max(1.0, max(violations) * 2))
    ax2.set_ylabel("SLO violation ratio (symlog, lower is better)")
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", rotation=45)
    fig.suptitle(title or "simulation", fontsize=10)
    fig.tight_layout()
    path = out / "averages.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written
