"""Reading and writing profile files (JSON, format `hadis-profile`, version 1).

The schema is documented in docs/profile-format.md. Loading validates everything up front
and raises ProfileError naming the field, the expected and the actual value.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    PositiveInt,
    field_validator,
)

from hadis.documents import read_document
from hadis.errors import ProfileError
from hadis.profiles.model import (
    BatchRule,
    ConfigRow,
    Direction,
    Metric,
    ModelVariant,
    Profile,
    ServingDefaults,
)

FORMAT = "hadis-profile"
VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricSpec(_Strict):
    name: str = Field(min_length=1)
    direction: Direction


class BatchRuleSpec(_Strict):
    kind: Literal["linear"] = "linear"
    factor: float = Field(default=0.9, gt=0)
    note: str = ""


class ModelSpec(_Strict):
    name: str = Field(min_length=1)
    # what serving needs; a simulation-only profile may leave them out
    source: str | None = Field(
        default=None, min_length=1, description="diffusers model id or local path"
    )
    steps: int | None = Field(default=None, ge=1)
    guidance: float | None = Field(default=None, ge=0)
    resolution: tuple[PositiveInt, PositiveInt] | None = None
    quality_alone: FiniteFloat
    latency_s: dict[int, float] = Field(description="batch size -> seconds per batch")
    max_batch: int = Field(default=32, ge=1)
    load_s: float | None = Field(
        default=None, ge=0, description="seconds to load the model from disk onto a device"
    )
    reload_s: float | None = Field(
        default=None, ge=0, description="seconds to move it back from host memory"
    )
    memory_gib: float | None = Field(
        default=None, gt=0, description="device memory its weights take once loaded (GiB)"
    )
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("latency_s")
    @classmethod
    def _latencies(cls, v: dict[int, float]) -> dict[int, float]:
        if 1 not in v:
            raise ValueError("must give the batch-1 latency (key '1')")
        for b, s in v.items():
            if b < 1 or not 0 < s < math.inf:
                raise ValueError(f"batch {b}: expected batch >= 1 and seconds > 0, got {s}")
        return v


class ConfigSpec(_Strict):
    light: str
    heavy: str
    r: float = Field(ge=0, le=1)
    d: float = Field(ge=0, le=1)
    f: float = Field(ge=0, le=1)
    quality: FiniteFloat
    latency_s: FiniteFloat = Field(gt=0)


class ServingSpec(_Strict):
    executor: str | None = None
    router: str | None = None
    discriminator: str | None = None
    workers: int | None = Field(default=None, ge=1)
    slo_s: float | None = Field(default=None, gt=0)


class ProfileSpec(_Strict):
    format: Literal["hadis-profile"]
    version: Literal[1]
    name: str = Field(min_length=1)
    description: str = ""
    provenance: str = ""
    gpu_type: str = Field(min_length=1)
    device_memory_gib: float | None = Field(
        default=None, gt=0, description="device memory a worker may fill with weights (GiB)"
    )
    metric: MetricSpec
    batch_latency_rule: BatchRuleSpec = Field(default_factory=BatchRuleSpec)
    models: list[ModelSpec] = Field(min_length=1)
    configs: list[ConfigSpec] = Field(default_factory=list)
    serving: ServingSpec = Field(default_factory=ServingSpec)


def profile_from_dict(data: dict[str, Any], origin: str = "<dict>") -> Profile:
    """Validate a parsed profile document (hadis.profiles.lint: the first error is raised,
    warnings are left to `hadis profile validate`) and build the immutable Profile."""
    from hadis.profiles.lint import lint_document  # lint reads this module's specs

    issues, spec = lint_document(data)
    errors = [i for i in issues if i.level == "error"]
    if errors or spec is None:
        more = f" (and {len(errors) - 1} more: hadis profile validate)" if len(errors) > 1 else ""
        first = f"{errors[0].where}: {errors[0].message}" if errors[0].where else errors[0].message
        raise ProfileError(f"profile {origin}: {first}{more}")
    rule = BatchRule(factor=spec.batch_latency_rule.factor, note=spec.batch_latency_rule.note)
    models = tuple(
        ModelVariant(
            name=m.name,
            source=m.source,
            steps=m.steps,
            guidance=m.guidance,
            resolution=m.resolution,
            quality_alone=m.quality_alone,
            latency_s=dict(sorted(m.latency_s.items())),
            max_batch=m.max_batch,
            batch_rule=rule,
            extra=m.extra,
            load_s=m.load_s,
            reload_s=m.reload_s,
            memory_gib=m.memory_gib,
        )
        for m in spec.models
    )
    configs = tuple(ConfigRow(**c.model_dump()) for c in spec.configs)
    return Profile(
        name=spec.name,
        gpu_type=spec.gpu_type,
        metric=Metric(spec.metric.name, spec.metric.direction),
        models=models,
        configs=configs,
        description=spec.description,
        provenance=spec.provenance,
        serving=ServingDefaults(**spec.serving.model_dump()),
        device_memory_gib=spec.device_memory_gib,
    )


def profile_to_dict(profile: Profile, batch_rule_note: str | None = None) -> dict[str, Any]:
    """The JSON document for a profile (inverse of profile_from_dict: loading then saving
    keeps every field)."""
    rule = profile.models[0].batch_rule
    note = rule.note if batch_rule_note is None else batch_rule_note
    serving = {k: v for k, v in asdict(profile.serving).items() if v is not None}
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": profile.name,
        "description": profile.description,
        "provenance": profile.provenance,
        "gpu_type": profile.gpu_type,
        **(
            {"device_memory_gib": profile.device_memory_gib}
            if profile.device_memory_gib is not None
            else {}
        ),
        "metric": {"name": profile.metric.name, "direction": profile.metric.direction.value},
        "batch_latency_rule": {"kind": "linear", "factor": rule.factor, "note": note},
        "models": [
            {
                "name": m.name,
                **_serving_fields(m),
                "quality_alone": m.quality_alone,
                "latency_s": {str(b): s for b, s in m.latency_s.items()},
                "max_batch": m.max_batch,
                **{
                    k: v
                    for k, v in (
                        ("load_s", m.load_s),
                        ("reload_s", m.reload_s),
                        ("memory_gib", m.memory_gib),
                    )
                    if v is not None
                },
                "extra": dict(m.extra),
            }
            for m in profile.models
        ],
        "configs": [config_row_dict(c) for c in profile.configs],
        **({"serving": serving} if serving else {}),
    }


def _serving_fields(m: ModelVariant) -> dict[str, Any]:
    out: dict[str, Any] = {"source": m.source, "steps": m.steps, "guidance": m.guidance}
    out["resolution"] = list(m.resolution) if m.resolution is not None else None
    return {k: v for k, v in out.items() if v is not None}


def config_row_dict(c: ConfigRow) -> dict[str, Any]:
    """One configuration row as it appears in a profile file."""
    return {
        "light": c.light,
        "heavy": c.heavy,
        "r": c.r,
        "d": c.d,
        "f": c.f,
        "quality": c.quality,
        "latency_s": c.latency_s,
    }


def load_profile_file(path: str | Path) -> Profile:
    return profile_from_dict(read_document(path, "profile", ProfileError), origin=str(path))


def save_profile(profile: Profile, path: str | Path, batch_rule_note: str | None = None) -> None:
    Path(path).write_text(
        json.dumps(profile_to_dict(profile, batch_rule_note), indent=1) + "\n", encoding="utf-8"
    )


def bundled_profiles() -> list[str]:
    """Names of the profiles shipped inside the package."""
    folder = resources.files("hadis") / "data" / "profiles"
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a bundled profile by name (e.g. 'hadis-l40s') or a profile file by path."""
    name = str(name_or_path)
    if name in bundled_profiles():
        ref = resources.files("hadis") / "data" / "profiles" / f"{name}.json"
        with resources.as_file(ref) as p:
            return load_profile_file(p)
    path = Path(name)
    if path.suffix == ".json" or path.exists():
        if not path.exists():
            raise ProfileError(f"profile file not found: {path}")
        return load_profile_file(path)
    raise ProfileError(
        f"unknown profile {name!r}: not a bundled profile ({', '.join(bundled_profiles())}) "
        "nor an existing file"
    )
