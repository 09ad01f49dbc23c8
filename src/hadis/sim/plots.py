"""PNG plots of an experiment: time series per policy and a bar chart of the averages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _series(summary: dict[str, Any], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for w in summary["windows"]:
        if w.get(key) is not None:
            xs.append(w["start_s"])
            ys.append(w[key])
    return xs, ys


def plot_results(
    out: Path, summaries: dict[str, dict[str, Any]], metric: str, models: list[str]
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    first = next(iter(summaries.values()))
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    xs, ys = _series(first, "demand_qps")
    axes[0].plot(xs, ys, color="black")
    axes[0].set_ylabel("demand (q/s)")
    for policy, s in summaries.items():
        style = "--" if s.get("fluid_bound") else "-"
        axes[1].plot(*_series(s, "quality"), style, label=policy)
        axes[2].plot(*_series(s, "violation_ratio"), style, label=policy)
    axes[1].set_ylabel(f"served {metric}")
    axes[2].set_ylabel("SLO violation ratio")
    axes[2].set_xlabel("time (s)")
    axes[1].legend(fontsize=8, ncol=4)
    fig.tight_layout()
    path = out / "timeseries.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    fig, axes = plt.subplots(len(models), 1, figsize=(10, 2.2 * len(models)), sharex=True)
    for ax, model in zip(axes, models, strict=True):
        for policy, s in summaries.items():
            if s.get("fluid_bound"):
                continue
            xs = [w["start_s"] for w in s["windows"]]
            ax.step(xs, [w["gpus"].get(model, 0) for w in s["windows"]], where="post", label=policy)
        ax.set_ylabel(f"GPUs\n{model}", fontsize=8)
    axes[0].legend(fontsize=8, ncol=3)
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    path = out / "gpus.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    names = list(summaries)
    quality = [summaries[n]["quality"] or 0.0 for n in names]
    violations = [summaries[n]["violation_ratio"] for n in names]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    bars = ax1.bar(names, quality, color="tab:blue")
    ax1.bar_label(bars, fmt="%.2f", fontsize=8)
    ax1.set_ylim(min(quality) * 0.9, max(quality) * 1.05)
    ax1.set_ylabel(f"mean served {metric}")
    bars = ax2.bar(names, violations, color="tab:red")
    ax2.bar_label(bars, fmt="%.4f", fontsize=8)
    ax2.set_yscale("symlog", linthresh=1e-4)
    ax2.set_ylabel("SLO violation ratio (symlog)")
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    path = out / "averages.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written
