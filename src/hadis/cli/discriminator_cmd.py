"""`hadis discriminator train`: train the real-vs-generated image discriminator."""

from __future__ import annotations

from pathlib import Path

import typer

from hadis.cli.common import console, user_errors
from hadis.errors import HadisError

app = typer.Typer(help="Train image discriminators.", no_args_is_help=True)


@app.command("train")
@user_errors
def train_command(
    real: Path = typer.Option(..., help="Folder of real images (searched recursively)."),
    generated: Path = typer.Option(
        ..., help="Folder of generated images; one sub-folder per model gives per-model cut points."
    ),
    out: Path = typer.Option(..., help="Output path (writes OUT.safetensors and OUT.json)."),
    backbone: str = typer.Option(
        "cnn", help="cnn (trained from scratch) or clip (frozen encoder + MLP head)."
    ),
    encoder: str | None = typer.Option(None, help="clip: local path of a CLIP model."),
    image_size: int = typer.Option(64, help="cnn: images are resized to this square size."),
    epochs: int = typer.Option(20, help="Training epochs."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Train real (1) vs generated (0); calibrate percentile cut points; save."""
    from hadis.routing.trained import train_discriminator

    for folder in (real, generated):
        if not folder.is_dir():
            raise HadisError(f"not a folder: {folder}")
    if epochs < 1 or image_size < 8:
        raise HadisError("epochs must be >= 1 and image size >= 8")
    res = train_discriminator(
        real,
        generated,
        out,
        backbone=backbone,
        encoder=encoder,
        image_size=image_size,
        epochs=epochs,
        seed=seed,
    )
    console.print(
        f"trained on {res.train_images} images; validation accuracy "
        f"{res.val_accuracy:.1%} on {res.val_images}; wrote "
        f"{out.with_suffix('.safetensors')} and {out.with_suffix('.json')}"
    )
