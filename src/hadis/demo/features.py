"""The demo world's image features for FID (the project's own extractor, no weights).

Per image, 70 numbers that describe what the world is made of: the share of pixels of each
palette colour (and of none), the mean colour on a 4x4 grid (layout), how many regions of
each object colour and each shape the adherence checker finds, how well the regions fit a
shape (mean IoU: crisp vs smeared objects) and the mean gradient (sharpness).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from hadis.demo.adherence import PALETTE, analyse, palette_labels
from hadis.demo.world import COLOURS, SHAPES

DIMS = len(PALETTE) + 1 + 48 + len(COLOURS) + len(SHAPES) + 2


def world_features(image: Image.Image) -> np.ndarray:
    rgb = image.convert("RGB")
    if rgb.size != (32, 32):  # torchmetrics probes the extractor with a 299x299 image
        rgb = rgb.resize((32, 32), Image.Resampling.BOX)
    arr = np.asarray(rgb, dtype=np.float32) / 255.0
    labels = palette_labels(rgb)
    shares = np.bincount(labels.ravel() + 1, minlength=len(PALETTE) + 1) / labels.size
    h, w, _ = arr.shape
    grid = arr.reshape(4, h // 4, 4, w // 4, 3).mean(axis=(1, 3)).ravel()
    regions = analyse(rgb, labels).regions
    colours = [sum(r.colour == c for r in regions) for c in COLOURS]
    shapes = [sum(r.shape == s for r in regions) for s in SHAPES]
    fit = np.mean([r.iou for r in regions]) if regions else 0.0
    grad = np.abs(np.diff(arr, axis=0)).mean() + np.abs(np.diff(arr, axis=1)).mean()
    return np.concatenate([shares, grid, colours, shapes, [fit, grad]]).astype(np.float32)


def make_world_features():
    """The extractor as a torch module for FidScorer: uint8 (N, 3, H, W) -> (N, 70)."""
    import torch

    class WorldFeatures(torch.nn.Module):
        def forward(self, x):
            if x.dim() == 2:  # precomputed features
                return x.float()
            arrs = x.permute(0, 2, 3, 1).to(torch.uint8).cpu().numpy()
            return torch.from_numpy(np.stack([world_features(Image.fromarray(a)) for a in arrs]))

    return WorldFeatures()
