"""The trainable discriminator learns a separable toy set; cut points mean fractions."""

import io
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

pytest.importorskip("torch", reason="needs the [diffusion] extra")

from hadis.cli.main import app
from hadis.routing.trained import TrainedDiscriminator, train_discriminator


def _smooth(rng, size=32):
    """'Real': a smooth two-colour gradient."""
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0, 1, size)[None, :, None]
    img = (a * (1 - t) + b * t).repeat(size, axis=0)
    return Image.fromarray(img.astype(np.uint8))


def _noisy(rng, size=32):
    """'Generated': high-frequency noise."""
    return Image.fromarray(rng.integers(0, 256, (size, size, 3)).astype(np.uint8))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(0)
    for i in range(60):
        (root / "real").mkdir(exist_ok=True)
        _smooth(rng).save(root / "real" / f"{i}.png")
        model = "light" if i % 2 else "heavy"
        (root / "gen" / model).mkdir(parents=True, exist_ok=True)
        _noisy(rng).save(root / "gen" / model / f"{i}.png")
    return root


def test_learns_a_separable_toy_set(toy, tmp_path):
    res = train_discriminator(
        toy / "real", toy / "gen", tmp_path / "disc", image_size=32, epochs=15, seed=0
    )
    assert res.val_accuracy >= 0.95
    disc = TrainedDiscriminator.load(tmp_path / "disc")
    rng = np.random.default_rng(1)
    real = disc.p_real([_smooth(rng) for _ in range(20)])
    fake = disc.p_real([_noisy(rng) for _ in range(20)])
    assert (real > 0.5).mean() >= 0.9 and (fake < 0.5).mean() >= 0.9
    config = json.loads((tmp_path / "disc.json").read_text())
    assert set(config["cut_points"]) == {"*", "heavy", "light"}


def test_cut_points_are_percentiles_of_generated_scores(toy, tmp_path):
    train_discriminator(toy / "real", toy / "gen", tmp_path / "d", image_size=32, epochs=3)
    disc = TrainedDiscriminator.load(tmp_path / "d")
    files = sorted((toy / "gen" / "light").glob("*.png"))
    scores = disc.p_real([Image.open(f) for f in files])
    for d in (0.2, 0.5, 0.8):
        below = (scores < disc.threshold("light", d)).mean()
        assert abs(below - d) <= 0.1
    assert disc.threshold("light", 0) == float("-inf")
    assert disc.threshold("light", 1) == float("inf")
    buf = io.BytesIO()
    _noisy(np.random.default_rng(3)).save(buf, format="PNG")
    conf = disc.confidence("light", None, 0, buf.getvalue())
    assert 0.0 <= conf <= 1.0
    with pytest.raises(ValueError, match="scores images"):
        disc.confidence("light", 1, 0, None)


def test_clip_backbone_with_a_local_encoder(toy, tmp_path):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    enc = tmp_path / "clip"
    CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
            projection_dim=512,
        )
    ).save_pretrained(enc)
    res = train_discriminator(
        toy / "real",
        toy / "gen",
        tmp_path / "c",
        backbone="clip",
        encoder=str(enc),
        image_size=32,
        epochs=15,
        lr=3e-3,
    )
    assert res.val_accuracy >= 0.9
    disc = TrainedDiscriminator.load(tmp_path / "c")
    assert disc.backbone == "clip"


def test_cli_train_and_bad_input(toy, tmp_path):
    out = tmp_path / "cli-disc"
    res = CliRunner().invoke(
        app,
        [
            "discriminator",
            "train",
            "--real",
            str(toy / "real"),
            "--generated",
            str(toy / "gen"),
            "--out",
            str(out),
            "--image-size",
            "32",
            "--epochs",
            "3",
        ],
    )
    assert res.exit_code == 0, res.output
    assert out.with_suffix(".safetensors").exists() and "validation accuracy" in res.stdout
    res = CliRunner().invoke(
        app,
        [
            "discriminator",
            "train",
            "--real",
            str(tmp_path / "nope"),
            "--generated",
            str(toy / "gen"),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 2 and "not a folder" in res.stderr
