"""`hadis profile build`: measure a pool for real and write its profile (see __init__)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hadis import bundled
from hadis.errors import HadisError
from hadis.fid import FidScorer, make_pixel_features
from hadis.profiles import BatchRule, ConfigRow, Direction, Metric, ModelVariant, Profile
from hadis.profiles.io import save_profile
from hadis.profiling.pool import PoolSpec, VariantSpec
from hadis.routing.trained import image_files

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def _quiet(stage: str, done: int, total: int) -> None:
    pass


def profile_stub(spec: PoolSpec) -> Profile:
    """A profile with just the variants, so the executor can load them."""
    models = tuple(
        ModelVariant(v.name, v.source, v.steps, v.guidance, _size(v), 0.0, {1: 1.0}, v.max_batch)
        for v in spec.variants
    )
    return Profile(spec.name, spec.gpu_type, Metric("FID", Direction.LOWER), models, ())


def measure_loads(
    make_executor: Callable[[], Any], variants: list[tuple[str, str]]
) -> dict[str, list[float | None]]:
    """Per variant [seconds to load it from disk, seconds to move it back from host
    memory, GiB its weights take], each measured once on a fresh executor (with a host
    cache of one): load it, load a variant of another source (which puts it in host
    memory), load it again. The reload is None when every variant shares one source
    (switching between them moves nothing)."""
    out: dict[str, list[float | None]] = {}
    for name, source in variants:
        other = next((n for n, s in variants if s != source), None)
        executor = make_executor()
        disk = executor.load(name)
        memory = executor.memory_gib()
        reload = None
        if other is not None:
            executor.load(other)
            reload = executor.load(name)
        out[name] = [
            round(disk, 4),
            None if reload is None else round(reload, 4),
            round(memory, 4),
        ]
    return out


def measure_latency(
    executor,
    model: str,
    resolution: tuple[int, int],
    batch_sizes: list[int],
    warmup: int,
    repeats: int,
) -> dict[int, tuple[float, float]]:
    """Median and p95 seconds per batch for each batch size."""
    out = {}
    for b in batch_sizes:
        prompts, seeds = [f"a photo of object {i}" for i in range(b)], list(range(b))
        for _ in range(warmup):
            executor.generate(model, prompts, seeds, resolution)
        times = [
            executor.generate(model, prompts, seeds, resolution).seconds for _ in range(repeats)
        ]
        out[b] = (statistics.median(times), float(np.percentile(times, 95)))
    return out


def generate_images(
    executor,
    variants: list[VariantSpec],
    prompts: list[str],
    folder: Path,
    progress: Progress = _quiet,
) -> None:
    """FOLDER/VARIANT/I.png for every variant and prompt I (seed = I), batched by each
    variant's max_batch; existing files are kept, so a rerun resumes."""
    for v in variants:
        out = folder / v.name
        out.mkdir(parents=True, exist_ok=True)
        todo = [i for i in range(len(prompts)) if not (out / f"{i}.png").exists()]
        if todo:
            executor.load(v.name)
        # seed = prompt index, so an image does not depend on its batch-mates
        for k in range(0, len(todo), v.max_batch):
            chunk = todo[k : k + v.max_batch]
            batch = executor.generate(
                v.name, [prompts[i] for i in chunk], chunk, tuple(v.resolution)
            )
            for i, img in zip(chunk, batch.images, strict=True):
                (out / f"{i}.png").write_bytes(img)
            progress(f"images {v.name}", k + len(chunk), len(todo))


def _check_manifest(workdir: Path, spec: PoolSpec, prompts: list[str]) -> None:
    """Caches are by prompt index: refuse a work folder made for other prompts or variants."""
    digest = hashlib.sha256(
        json.dumps(
            {"pool": spec.model_dump(mode="json"), "prompts": prompts}, sort_keys=True
        ).encode()
    ).hexdigest()
    manifest = workdir / "manifest.json"
    if manifest.exists():
        if json.loads(manifest.read_text()).get("digest") != digest:
            raise HadisError(f"{workdir} caches another pool or prompt set; use another --workdir")
    else:
        manifest.write_text(json.dumps({"digest": digest, "prompts": len(prompts)}))


def build_profile(
    spec: PoolSpec,
    prompts: list[str],
    reference_dir: Path,
    workdir: Path,
    out: Path,
    *,
    router: str = "online",
    discriminator: str = "random",
    grid_step: float = 0.1,
    warmup: int = 1,
    repeats: int = 3,
    extractor=None,
    local_files_only: bool = True,
    progress: Progress = _quiet,
) -> Profile:
    import torch

    from hadis.routing.simple import make_discriminator, make_router
    from hadis.workers.executors import DiffusersExecutor

    if not prompts:
        raise HadisError("the prompt file has no prompts")
    reference = [Image.open(f) for f in image_files(Path(reference_dir))]
    if len(reference) < 2:
        raise HadisError(f"need at least 2 reference images in {reference_dir}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    _check_manifest(workdir, spec, prompts)
    stub = profile_stub(spec)
    executor = DiffusersExecutor(stub, spec.device, spec.dtype, local_files_only)
    order = sorted(spec.variants, key=lambda v: v.steps)  # provisional, re-sorted by latency

    # 1. latency per batch size (cached)
    lat_file = workdir / "latency.json"
    latency: dict[str, dict[str, list[float]]] = (
        json.loads(lat_file.read_text()) if lat_file.exists() else {}
    )
    for i, v in enumerate(order):
        if v.name not in latency:
            executor.load(v.name)
            sizes = [b for b in spec.batch_sizes if b <= v.max_batch]
            measured = measure_latency(executor, v.name, _size(v), sizes, warmup, repeats)
            latency[v.name] = {str(b): list(m) for b, m in measured.items()}
            lat_file.write_text(json.dumps(latency, indent=1))
        progress("latency", i + 1, len(order))

    # 1b. model switch times, from disk and from host memory, and the memory the weights
    # take (cached; a cache from before the memory was measured is measured again)
    load_file = workdir / "load.json"
    loads: dict[str, list[float | None]] = (
        json.loads(load_file.read_text()) if load_file.exists() else {}
    )
    if set(loads) != {v.name for v in order} or any(len(x) < 3 for x in loads.values()):
        loads = measure_loads(
            lambda: DiffusersExecutor(stub, spec.device, spec.dtype, local_files_only, 1),
            [(v.name, bundled.resolve(v.source)) for v in order],
        )
        load_file.write_text(json.dumps(loads, indent=1))

    # 2. images (cached per file: a rerun resumes)
    generate_images(executor, order, prompts, workdir / "images", progress)

    # 3. router scores and discriminator confidences (cached)
    score_file = workdir / f"scores-{_cache_key(router)}-{_cache_key(discriminator)}.json"
    if score_file.exists():
        scores = json.loads(score_file.read_text())
    else:
        r = make_router(router)
        d = make_discriminator(discriminator, stub)
        if hasattr(r, "score_many"):
            router_scores = [float(s) for s in r.score_many(prompts)]
        else:
            router_scores = [float(r.score(None, p)) for p in prompts]
        conf = {}
        for v in order:
            files = [workdir / "images" / v.name / f"{i}.png" for i in range(len(prompts))]
            conf[v.name] = [
                float(d.confidence(v.name, None, i, f.read_bytes())) for i, f in enumerate(files)
            ]
            progress("discriminator", order.index(v) + 1, len(order))
        scores = {"router": router_scores, "confidence": conf}
        score_file.write_text(json.dumps(scores))

    # 4. the (r, d) sweep per pair
    scorer = FidScorer(extractor or make_pixel_features(), reference)
    feats = {
        v.name: scorer.features(
            [
                Image.open(io.BytesIO((workdir / "images" / v.name / f"{i}.png").read_bytes()))
                for i in range(len(prompts))
            ]
        )
        for v in order
    }
    lat1 = {name: m["1"][0] for name, m in latency.items()}
    order = sorted(order, key=lambda v: lat1[v.name])
    quality_alone = {v.name: scorer.fid(feats[v.name]) for v in order}
    grid = np.round(np.arange(0, 1 + 1e-9, grid_step), 6)
    n = len(prompts)
    by_router = np.argsort(-np.asarray(scores["router"]), kind="stable")  # hardest first
    rows: list[ConfigRow] = []
    pairs = [(a, b) for i, a in enumerate(order) for b in order[i + 1 :]]
    for p, (light, heavy) in enumerate(pairs):
        light_conf = np.asarray(scores["confidence"][light.name])
        for r in grid:
            heavy_mask = np.zeros(n, dtype=bool)
            heavy_mask[by_router[: int(round(r * n))]] = True
            rest = np.flatnonzero(~heavy_mask)
            rest_by_conf = rest[
                np.argsort(light_conf[rest], kind="stable")
            ]  # least confident first
            for d in grid:
                mask = heavy_mask.copy()
                mask[rest_by_conf[: int(round(d * len(rest)))]] = True
                mixed = np.where(
                    mask[:, None], feats[heavy.name].numpy(), feats[light.name].numpy()
                )
                f = float(r + (1 - r) * d)
                rows.append(
                    ConfigRow(
                        light.name,
                        heavy.name,
                        float(r),
                        float(d),
                        round(f, 6),
                        round(scorer.fid(torch.from_numpy(mixed)), 4),
                        round((1 - r) * lat1[light.name] + f * lat1[heavy.name], 6),
                    )
                )
        progress("sweep", p + 1, len(pairs))

    # 5. the profile (a batch never takes less than a smaller one: timing noise on fast
    # models can say otherwise, and the planner must not bet on it)
    models = tuple(
        ModelVariant(
            name=v.name,
            source=v.source,
            steps=v.steps,
            guidance=v.guidance,
            resolution=_size(v),
            quality_alone=round(quality_alone[v.name], 4),
            latency_s=monotone({int(b): m[0] for b, m in latency[v.name].items()}),
            max_batch=v.max_batch,
            batch_rule=BatchRule(0.9),
            extra={"latency_p95_s": {b: m[1] for b, m in latency[v.name].items()}},
            load_s=loads[v.name][0],
            reload_s=loads[v.name][1],
            memory_gib=loads[v.name][2] or None,
        )
        for v in order
    )
    profile = Profile(
        name=spec.name,
        gpu_type=spec.gpu_type,
        device_memory_gib=spec.device_memory_gib,
        metric=Metric("FID", Direction.LOWER),
        models=models,
        configs=tuple(rows),
        description=f"Profiled by hadis profile build on {time.strftime('%Y-%m-%d')}: "
        f"{n} prompts, {len(reference)} reference images, r/d grid step {grid_step:g}.",
        provenance=f"router {router}, discriminator {discriminator}, FID with "
        f"{type(scorer.extractor).__name__} features (torchmetrics); latencies: median of "
        f"{repeats} runs after {warmup} warm-up on {spec.device} ({spec.dtype}).",
    )
    save_profile(
        profile,
        out,
        batch_rule_note="measured batch sizes are used as given; others follow 0.9 * b * L(1)",
    )
    return profile


def _size(v: VariantSpec) -> tuple[int, int]:
    return (v.resolution[0], v.resolution[1])


def _cache_key(spec: str) -> str:
    """A file-name-safe key of a router/discriminator spec; a file-backed one (PATH after
    `learned:` or `trained:`) also carries a digest of its file, so a retrained model does
    not reuse the scores of the old one."""
    key = re.sub(r"[^A-Za-z0-9.-]+", "_", spec)
    kind, _, path = spec.partition(":")
    if kind == "learned":
        file = Path(bundled.resolve(path))
    elif kind == "trained":
        file = Path(bundled.resolve(path)).with_suffix(".json")
    else:
        return key
    if file.is_file():
        key += "-" + hashlib.sha256(file.read_bytes()).hexdigest()[:12]
    return key


def monotone(latency_s: dict[int, float]) -> dict[int, float]:
    """Seconds per batch made non-decreasing in the batch size (running maximum)."""
    out, worst = {}, 0.0
    for b in sorted(latency_s):
        worst = max(worst, latency_s[b])
        out[b] = worst
    return out
