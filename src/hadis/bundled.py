"""Paths into the package's data folder: `hadis:demo/models/tiny` names a bundled file or
folder wherever hadis is installed (model sources, discriminator weights)."""

from __future__ import annotations

from importlib import resources

PREFIX = "hadis:"


def resolve(path: str) -> str:
    """`hadis:REL` -> the bundled data path; anything else unchanged."""
    if path.startswith(PREFIX):
        return str(resources.files("hadis") / "data" / path[len(PREFIX) :])
    return path
