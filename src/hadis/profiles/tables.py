"""A profile from two plain tables (`hadis profile import`), for pools profiled elsewhere.

Latencies CSV, one row per measured batch size:   model,batch,seconds
Quality CSV, one row per configuration:           light,heavy,r,d,quality

A model's quality alone comes from a quality row with an empty `heavy` (and empty or zero
r and d), else from a pair row that sends everything to one model: f = 0 (all light) for
the light model, f = 1 for the heavy one. A discriminator-only curve is just rows with
r = 0. f = r + (1 - r) d and each row's expected latency (1 - r) L_light(1) + f L_heavy(1)
are computed. Models are listed fastest first. The result is a simulation-only profile
(no `source`/`steps`): `hadis plan` and `hadis simulate` take it, `hadis serve` with the
profile executor too.
"""

from __future__ import annotations

from pathlib import Path

from hadis.errors import ProfileError
from hadis.profiles.io import profile_from_dict
from hadis.profiles.model import Direction, Profile
from hadis.textfiles import parse_float, parse_int, read_csv

LATENCY_COLUMNS = ("model", "batch", "seconds")
QUALITY_COLUMNS = ("light", "heavy", "r", "d", "quality")


def _latencies(path: Path) -> dict[str, dict[int, float]]:
    _, rows = read_csv(path, "latency table", required=LATENCY_COLUMNS, error=ProfileError)
    out: dict[str, dict[int, float]] = {}
    for row in rows:
        v, where = row.values, f"latency table {path}: line {row.line}"
        if not v["model"]:
            raise ProfileError(f"{where}: model is empty")
        batch = parse_int(v["batch"], f"{where}: batch", ProfileError)
        seconds = parse_float(v["seconds"], f"{where}: seconds", ProfileError)
        if batch < 1 or seconds <= 0:
            raise ProfileError(f"{where}: expected batch >= 1 and seconds > 0")
        per_model = out.setdefault(v["model"], {})
        if batch in per_model:
            raise ProfileError(f"{where}: batch {batch} of {v['model']!r} is given twice")
        per_model[batch] = seconds
    for model, lat in out.items():
        if 1 not in lat:
            raise ProfileError(f"latency table {path}: {model!r} has no batch-1 row")
    return out


def _qualities(
    path: Path, models: dict[str, dict[int, float]]
) -> tuple[dict[str, float], list[dict[str, object]]]:
    _, rows = read_csv(path, "quality table", required=QUALITY_COLUMNS, error=ProfileError)
    alone: dict[str, float] = {}
    inferred: dict[str, float] = {}
    configs: list[dict[str, object]] = []
    for row in rows:
        v, where = row.values, f"quality table {path}: line {row.line}"
        for role in ("light", "heavy"):
            if v[role] and v[role] not in models:
                raise ProfileError(
                    f"{where}: {role} {v[role]!r} is not in the latency table ({', '.join(models)})"
                )
        quality = parse_float(v["quality"], f"{where}: quality", ProfileError)
        if not v["heavy"]:
            if not v["light"]:
                raise ProfileError(f"{where}: light is empty")
            if any(v[k] not in ("", "0", "0.0") for k in ("r", "d")):
                raise ProfileError(f"{where}: a model-alone row (empty heavy) takes no r or d")
            alone[v["light"]] = quality
            continue
        r = parse_float(v["r"], f"{where}: r", ProfileError)
        d = parse_float(v["d"], f"{where}: d", ProfileError)
        if not (0 <= r <= 1 and 0 <= d <= 1):
            raise ProfileError(f"{where}: r and d are fractions in [0, 1], got r={r:g} d={d:g}")
        f = r + (1 - r) * d
        if f == 0:
            inferred.setdefault(v["light"], quality)
        if f == 1:
            inferred.setdefault(v["heavy"], quality)
        light_s, heavy_s = models[v["light"]][1], models[v["heavy"]][1]
        configs.append(
            {
                "light": v["light"],
                "heavy": v["heavy"],
                "r": r,
                "d": d,
                "f": round(f, 9),
                "quality": quality,
                "latency_s": round((1 - r) * light_s + f * heavy_s, 9),
            }
        )
    for model in models:
        if model not in alone and model not in inferred:
            raise ProfileError(
                f"quality table {path}: no quality for {model!r} alone: add a row "
                f"'{model},,,,QUALITY' (or a pair row with r = 1 or r = d = 0)"
            )
    return {m: alone.get(m, inferred.get(m, 0.0)) for m in models}, configs


def profile_from_tables(
    latencies: str | Path,
    quality: str | Path,
    *,
    name: str,
    metric: str = "FID",
    direction: Direction = Direction.LOWER,
    gpu_type: str = "unspecified",
    slo_s: float | None = None,
    workers: int | None = None,
    description: str = "",
) -> Profile:
    lat = _latencies(Path(latencies))
    alone, configs = _qualities(Path(quality), lat)
    order = sorted(lat, key=lambda m: lat[m][1])
    serving = {k: v for k, v in (("slo_s", slo_s), ("workers", workers)) if v is not None}
    doc = {
        "format": "hadis-profile",
        "version": 1,
        "name": name,
        "description": description,
        "provenance": f"hadis profile import --latencies {latencies} --quality {quality}",
        "gpu_type": gpu_type,
        "metric": {"name": metric, "direction": str(direction)},
        "models": [
            {
                "name": m,
                "quality_alone": alone[m],
                "latency_s": {str(b): s for b, s in lat[m].items()},
            }
            for m in order
        ],
        "configs": configs,
        **({"serving": serving} if serving else {}),
    }
    return profile_from_dict(doc, origin=f"imported from {latencies} and {quality}")
