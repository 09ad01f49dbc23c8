"""`hadis route`: the online router's features, score and decision for prompts."""

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
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line per prompt."),
) -> None:
    """Compute the router's eight features, its score and the decision at ratio r."""
    from hadis.routing.features import FEATURE_NAMES, OnlineRouter

    if (prompt is None) == (file is None):
        raise HadisError("give a prompt or --file PROMPTS (not both)")
    if not 0 <= r <= 1:
        raise HadisError(f"r must be in [0, 1], got {r}")
    if file is not None:
        prompts = [p for p in read_text(file, "prompt file").splitlines() if p.strip()]
        if not prompts:
            raise HadisError(f"prompt file {file} has no prompts")
    else:
        prompts = [prompt]  # type: ignore[list-item]
    router = OnlineRouter()
    feats = router.extractor.features(prompts)
    scores = router.scores_of(feats)
    cut = router.threshold(r)
    if as_json or file is not None:
        for p, f, s in zip(prompts, feats, scores, strict=True):
            typer.echo(
                json.dumps(
                    {
                        "prompt": p,
                        "features": dict(zip(FEATURE_NAMES, map(int, f), strict=True)),
                        "score": float(s),
                        "heavy": bool(s > cut),
                        "r": r,
                    }
                )
            )
        return
    table = Table("feature", "value", title=prompts[0])
    for name, value in zip(FEATURE_NAMES, feats[0], strict=True):
        table.add_row(name, str(int(value)))
    console.print(table)
    decision = "heavy (router bypass)" if scores[0] > cut else "light (then discriminator)"
    console.print(f"score {scores[0]:.3f}; cut point at r={r:g}: {cut:.3f} -> {decision}")
