"""Pool files: the variants to profile (YAML or JSON)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hadis.documents import first_error, read_document
from hadis.errors import HadisError


class VariantSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    source: str = Field(min_length=1, description="diffusers model id or local path")
    steps: int = Field(ge=1)
    guidance: float = Field(default=0.0, ge=0)
    resolution: tuple[int, int]
    max_batch: int = Field(default=4, ge=1)


class PoolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    gpu_type: str = "unspecified"
    variants: list[VariantSpec] = Field(min_length=2)
    batch_sizes: list[int] = Field(default=[1, 2, 4])
    device: str = "cpu"
    dtype: str = "float32"
    # device memory (GiB) a worker may fill with the variants' weights (the GPU's memory
    # less what the largest batch needs); written to the profile, which then lets a worker
    # keep several variants on its device (core/residency.py). None: one per device.
    device_memory_gib: float | None = Field(default=None, gt=0)


def load_pool(path: str | Path) -> PoolSpec:
    data = read_document(path, "pool file")
    try:
        spec = PoolSpec.model_validate(data)
    except ValidationError as e:
        raise HadisError(f"pool file {path}: {first_error(e)}") from e
    names = [v.name for v in spec.variants]
    if len(set(names)) != len(names):
        raise HadisError(f"pool file {path}: variant names must be unique, got {names}")
    return spec
