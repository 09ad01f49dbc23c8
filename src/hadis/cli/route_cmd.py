"""`hadis route`: a router's score and decision for prompts (the rule router: its features)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from hadis.cli.common import console, user_errors
from hadis.errors import HadisError
from hadis.textfiles import read_text


@user_errors
def route_command(
    prompt: str | None = typer.Argument(None, help="A prompt to score."),
    file: Path | None = typer.Option(None, "--file", help="A file of prompts, one per line."),
    r: float = typer.Option(0.3, help="Router ratio: the top-r fraction goes to heavy."),
    router: str = typer.Option(
        "online",
        help="online (the paper's rule router, from spaCy features) or learned:PATH "
        "(from `hadis router train`; hadis:demo/router.json is the demo pool's).",
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line per prompt."),
) -> None:
    """Score prompts with a router and show the decision at ratio r (and, for the rule
    router, its eight features)."""
    if (prompt is None) == (file is None):
        raise HadisError("give a prompt or --file PROMPTS (not both)")
    if not 0 <= r <= 1:
        raise HadisError(f"r must be in [0, 1], got {r}")
    if router != "online" and not router.startswith("learned:"):
        raise HadisError(f"--router must be online or learned:PATH, got {router!r}")
    if file is not None:
        prompts = [p for p in read_text(file, "prompt file").splitlines() if p.strip()]
        if not prompts:
            raise HadisError(f"prompt file {file} has no prompts")
    else:
        prompts = [prompt]  # type: ignore[list-item]
    features: list[dict[str, int]] | None = None
    if router == "online":
        from hadis.routing.features import FEATURE_NAMES, OnlineRouter

        online = OnlineRouter()
        feats = online.extractor.features(prompts)
        scores = online.scores_of(feats)
        cut = online.threshold(r)
        features = [dict(zip(FEATURE_NAMES, map(int, f), strict=True)) for f in feats]
    else:
        from hadis import bundled
        from hadis.routing.learned import LearnedRouter

        learned = LearnedRouter.load(bundled.resolve(router.split(":", 1)[1]))
        scores = learned.score_many(prompts)
        cut = learned.threshold(r)
    if as_json or file is not None:
        for i, (p, s) in enumerate(zip(prompts, scores, strict=True)):
            row = {"prompt": p, "score": float(s), "heavy": bool(s > cut), "r": r}
            if features is not None:
                row["features"] = features[i]
            typer.echo(json.dumps(row))
        return
    if features is not None:
        table = Table("feature", "value", title=prompts[0])
        for name, value in features[0].items():
            table.add_row(name, str(value))
        console.print(table)
    decision = "heavy (router bypass)" if scores[0] > cut else "light (then discriminator)"
    console.print(f"score {scores[0]:.3f}; cut point at r={r:g}: {cut:.3f} -> {decision}")
