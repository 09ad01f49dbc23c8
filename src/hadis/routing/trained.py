"""A trainable discriminator: real-vs-generated image classifier (torch).

Two backbones:
- `cnn`: a compact convolutional classifier trained from scratch (default);
- `clip`: a frozen pretrained CLIP image encoder loaded from a local path plus a trained
  MLP head 512 -> 256 -> 2 (the paper's design with CLIP ViT-B/32), when such an encoder
  is available locally.
Confidence = P(real). Raw probabilities are badly calibrated, so the model file carries
percentile cut points of the confidences of the generated reference images (per model
when the generated folder has one sub-folder per model): threshold(model, d) is the
d-quantile, so that d keeps meaning "the bottom-d fraction".

Files: `<out>.safetensors` (weights) and `<out>.json` (config, cut points, metrics).
Needs the [diffusion] extra (torch, safetensors; transformers for `clip`).
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from PIL import Image

from hadis.errors import HadisError
from hadis.routing.registry import register_discriminator

FORMAT = "hadis-discriminator"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
N_CUTS = 201  # cut points at quantiles 0, 0.005, ..., 1


def _torch() -> ModuleType:
    try:
        import torch
    except ImportError as e:
        raise HadisError(
            "the trained discriminator needs torch: pip install 'hadis[diffusion]'"
        ) from e
    return torch


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def build_network(backbone: str, image_size: int, encoder: str | None = None):
    torch = _torch()
    nn = torch.nn
    if backbone == "cnn":
        return nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(64, 2),
        )
    if backbone == "clip":
        if not encoder:
            raise HadisError("the clip backbone needs --encoder PATH (a local CLIP model)")
        from transformers import CLIPVisionModelWithProjection

        vision = CLIPVisionModelWithProjection.from_pretrained(encoder, local_files_only=True)
        vision.requires_grad_(False)
        vision.eval()
        dim = vision.config.projection_dim

        module: Any = nn.Module  # torch's, known only at run time

        class ClipHead(module):
            def __init__(self) -> None:
                super().__init__()
                self.encoder = vision
                self.head = nn.Sequential(nn.Linear(dim, 256), nn.ReLU(), nn.Linear(256, 2))

            def forward(self, x):
                with torch.no_grad():
                    emb = self.encoder(pixel_values=x).image_embeds
                return self.head(emb)

        return ClipHead()
    raise HadisError(f"unknown backbone {backbone!r}; valid: cnn, clip")


def to_tensor(image: Image.Image, size: int):
    torch = _torch()
    arr = np.asarray(image.convert("RGB").resize((size, size)), dtype=np.float32) / 127.5 - 1
    return torch.from_numpy(arr).permute(2, 0, 1)


def _load_images(files: list[Path], size: int):
    torch = _torch()
    return torch.stack([to_tensor(Image.open(f), size) for f in files]) if files else None


@dataclass(frozen=True)
class TrainResult:
    out: Path
    val_accuracy: float
    train_images: int
    val_images: int


def train_discriminator(
    real_dir: Path,
    generated_dir: Path,
    out: Path,
    *,
    backbone: str = "cnn",
    encoder: str | None = None,
    image_size: int = 64,
    epochs: int = 20,
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    val_fraction: float = 0.2,
) -> TrainResult:
    """Train real (label 1) vs generated (label 0); save weights, config and cut points."""
    torch = _torch()
    real, fake = image_files(Path(real_dir)), image_files(Path(generated_dir))
    if len(real) < 2 or len(fake) < 2:
        raise HadisError(
            f"need at least 2 real and 2 generated images, found {len(real)} in {real_dir} "
            f"and {len(fake)} in {generated_dir}"
        )
    rng = random.Random(seed)
    torch.manual_seed(seed)
    items = [(f, 1) for f in real] + [(f, 0) for f in fake]
    rng.shuffle(items)
    n_val = max(2, int(len(items) * val_fraction))
    val, train = items[:n_val], items[n_val:]
    x_train = _load_images([f for f, _ in train], image_size)
    y_train = torch.tensor([y for _, y in train])
    x_val = _load_images([f for f, _ in val], image_size)
    y_val = torch.tensor([y for _, y in val])
    net = build_network(backbone, image_size, encoder)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(x_train), generator=gen)
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            opt.zero_grad()
            loss_fn(net(x_train[idx]), y_train[idx]).backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        acc = float((net(x_val).argmax(1) == y_val).float().mean())
    disc = TrainedDiscriminator(net, backbone, image_size, encoder, {}, {})
    cuts = disc.calibrate(Path(generated_dir))
    config = {
        "format": FORMAT,
        "version": 1,
        "backbone": backbone,
        "encoder": encoder,
        "image_size": image_size,
        "cut_points": cuts,
        "metrics": {"val_accuracy": acc, "train_images": len(train), "val_images": len(val)},
        "trained_on": {
            "real": str(real_dir),
            "generated": str(generated_dir),
            "seed": seed,
            "epochs": epochs,
        },
    }
    save(net, config, out)
    return TrainResult(Path(out), acc, len(train), len(val))


def save(net, config: dict[str, Any], out: Path) -> None:
    from safetensors.torch import save_file

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    weights = {
        k: v.contiguous() for k, v in net.state_dict().items() if not k.startswith("encoder.")
    }  # the frozen encoder stays where it is
    save_file(weights, str(out.with_suffix(".safetensors")))
    out.with_suffix(".json").write_text(json.dumps(config, indent=1) + "\n")


class TrainedDiscriminator:
    """Discriminator interface over a trained classifier; scores the image it is given."""

    name = "trained"

    def __init__(
        self,
        net,
        backbone: str,
        image_size: int,
        encoder: str | None,
        cut_points: dict[str, list[float]],
        metrics: dict[str, Any],
    ) -> None:
        self.net = net
        self.backbone = backbone
        self.image_size = image_size
        self.encoder = encoder
        self.cut_points = cut_points
        self.metrics = metrics

    @classmethod
    def load(cls, path: str | Path) -> TrainedDiscriminator:
        _torch()
        from safetensors.torch import load_file

        path = Path(path)
        cfg_path = path.with_suffix(".json")
        try:
            config = json.loads(cfg_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise HadisError(f"cannot read discriminator config {cfg_path}: {e}") from e
        if config.get("format") != FORMAT or config.get("version") != 1:
            raise HadisError(f"{cfg_path} is not a hadis discriminator (format {FORMAT} v1)")
        net = build_network(config["backbone"], config["image_size"], config.get("encoder"))
        state = load_file(str(path.with_suffix(".safetensors")))
        missing, unexpected = net.load_state_dict(state, strict=False)
        if unexpected or any(not k.startswith("encoder.") for k in missing):
            raise HadisError(f"weights in {path} do not fit the {config['backbone']} network")
        net.eval()
        return cls(
            net,
            config["backbone"],
            config["image_size"],
            config.get("encoder"),
            config["cut_points"],
            config.get("metrics", {}),
        )

    def p_real(self, images: list[Image.Image]) -> np.ndarray:
        torch = _torch()
        x = torch.stack([to_tensor(im, self.image_size) for im in images])
        with torch.no_grad():
            return torch.softmax(self.net(x), dim=1)[:, 1].numpy()

    def confidence(
        self, model: str, prompt_id: int | None, image_seed: int, image: bytes | None = None
    ) -> float:
        if image is None:
            raise HadisError("the trained discriminator scores images; got none")
        return float(self.p_real([Image.open(io.BytesIO(image))])[0])

    def threshold(self, model: str, d: float) -> float:
        cuts = self.cut_points.get(model) or self.cut_points.get("*")
        if not cuts:
            raise HadisError(f"no cut points for model {model!r}")
        if d <= 0:
            return float("-inf")
        if d >= 1:
            return float("inf")
        return float(np.interp(d, np.linspace(0, 1, len(cuts)), cuts))

    def calibrate(self, generated_dir: Path) -> dict[str, list[float]]:
        """Cut points over the generated reference images: overall ('*') and per sub-folder
        (one per model) when there are any."""
        out: dict[str, list[float]] = {}
        groups = {"*": image_files(generated_dir)}
        for sub in sorted(p for p in generated_dir.iterdir() if p.is_dir()):
            groups[sub.name] = image_files(sub)
        for key, files in groups.items():
            if files:
                scores = np.concatenate(
                    [
                        self.p_real([Image.open(f) for f in files[i : i + 256]])
                        for i in range(0, len(files), 256)
                    ]
                )
                out[key] = np.quantile(scores, np.linspace(0, 1, N_CUTS)).tolist()
        self.cut_points = out
        return out


@register_discriminator("trained", argument="PATH")
def _trained(path: str, profile: object, seed: int) -> TrainedDiscriminator:
    from hadis import bundled

    return TrainedDiscriminator.load(bundled.resolve(path))
