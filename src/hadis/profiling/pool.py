"""Pool files: the variants to profile (YAML or JSON)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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


def load_pool(path: str | Path) -> PoolSpec:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise HadisError(f"cannot read pool file {path}: {e.strerror}") from e
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:  # noqa: BLE001  (yaml and json raise different types)
        raise HadisError(f"pool file {path} is not valid {path.suffix[1:]}: {e}") from e
    try:
        spec = PoolSpec.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise HadisError(f"pool file {path}: {loc}: {err['msg']}") from e
    names = [v.name for v in spec.variants]
    if len(set(names)) != len(names):
        raise HadisError(f"pool file {path}: variant names must be unique, got {names}")
    return spec
