"""The feature extractors the profiler computes FID over, by name."""

from __future__ import annotations

from hadis.errors import HadisError
from hadis.fid import make_pixel_features

FEATURES = ("pixel", "world")


def make_extractor(name: str):
    """`pixel`: mean colours on a grid (any images); `world`: the demo world's features
    (palette shares, layout, regions and shapes found, sharpness; 32x32 images)."""
    if name == "pixel":
        return make_pixel_features()
    if name == "world":
        from hadis.demo.features import make_world_features

        return make_world_features()
    raise HadisError(f"unknown features {name!r}; valid: {', '.join(FEATURES)}")
