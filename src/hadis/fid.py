"""FID of image sets: torchmetrics' Frechet distance over a feature extractor.

Features are extracted once per image; each configuration row then feeds its selection of
precomputed features to the metric (the extractor passes 2-D inputs through unchanged).
`PixelFeatures` is the shipped CPU extractor (average-pooled colours on a small grid): no
weights to download, good enough to rank configurations of small images; a local model
(any nn.Module mapping images to vectors) can replace it. The profiler picks one by name
(profiling/features.py).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np


def _torch() -> ModuleType:
    import torch

    return torch


def make_pixel_features(grid: int = 4):
    torch = _torch()
    module: Any = torch.nn.Module  # torch's, known only at run time

    class PixelFeatures(module):
        """Images (N, 3, H, W) -> mean colours on a grid x grid layout (3 grid^2 dims)."""

        def __init__(self) -> None:
            super().__init__()
            self.grid = grid

        def forward(self, x):
            if x.dim() == 2:  # precomputed features
                return x.float()
            x = x.float()
            if x.max() > 1.5:  # uint8 images
                x = x / 255.0
            pooled = torch.nn.functional.adaptive_avg_pool2d(x, self.grid)
            return pooled.flatten(1)

    return PixelFeatures()


class FidScorer:
    def __init__(self, extractor, reference_images: list) -> None:
        from torchmetrics.image.fid import FrechetInceptionDistance

        self.extractor = extractor
        self.metric = FrechetInceptionDistance(feature=extractor, reset_real_features=False)
        self.metric.update(self.features(reference_images), real=True)

    def features(self, images: list):
        """(N, d) features of PIL images."""
        torch = _torch()
        batch = torch.stack(
            [
                torch.from_numpy(np.array(im.convert("RGB"), dtype=np.uint8)).permute(2, 0, 1)
                for im in images
            ]
        )
        with torch.no_grad():
            return self.extractor(batch)

    def fid(self, features) -> float:
        self.metric.reset()
        self.metric.update(features, real=False)
        return float(self.metric.compute())
