"""Executors: run one batch of prompts on one worker's model and return PNG images.

An executor instance belongs to one worker (one device slot) and is only called from that
worker's thread: `load(model)` when the plan moves the worker (timed and reported), then
`generate(...)` per batch.
"""

from __future__ import annotations

import functools
import importlib
import io
import itertools
import json
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from PIL import Image, ImageDraw

from hadis import bundled
from hadis.core.config import HOST_CACHE, SWITCH_DELAY_S
from hadis.core.residency import Found, Residency, switch_seconds
from hadis.errors import HadisError
from hadis.profiles import ModelVariant, Profile
from hadis.registry import Registry


@dataclass(frozen=True, slots=True)
class BatchOutput:
    images: list[bytes]  # PNG, one per prompt
    seconds: float  # wall time of the batch


class Executor(Protocol):
    name: str

    def load(self, model: str) -> float:
        """Make `model` the worker's active model; returns the seconds it took."""
        ...

    def generate(
        self, model: str, prompts: list[str], seeds: list[int], size: tuple[int, int]
    ) -> BatchOutput: ...


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def resized_png(image: bytes, size: tuple[int, int]) -> bytes:
    """A PNG resized to `size` (width, height)."""
    with Image.open(io.BytesIO(image)) as img:
        return png_bytes(img.convert("RGB").resize((size[0], size[1]), Image.Resampling.LANCZOS))


@functools.lru_cache(maxsize=64)
def placeholder_png(model: str, size: tuple[int, int]) -> bytes:
    """A labelled placeholder: one colour per model with the model's name (cached)."""
    hue = zlib.crc32(model.encode()) & 0xFFFFFF
    img = Image.new("RGB", size, ((hue >> 16) & 255, (hue >> 8) & 255, hue & 255))
    ImageDraw.Draw(img).text((4, 4), f"hadis placeholder\n{model}", fill=(255, 255, 255))
    return png_bytes(img)


class ProfileExecutor:
    """Load-testing executor: waits the profiled batch latency x time_scale and returns
    labelled placeholder images. A model switch waits what the engine expects
    (Engine._start_switch, core/residency.py): nothing for a model kept on the device, the
    profile's reload time for one kept in host memory (among the last `host_cache`), its
    load time from disk, else switch_delay_s; x time_scale.

    For load tests and sim-vs-live parity only; it never generates real images.
    """

    name = "profile"

    def __init__(
        self,
        profile: Profile,
        time_scale: float = 1.0,
        switch_delay_s: float = SWITCH_DELAY_S,
        host_cache: int = HOST_CACHE,
    ):
        if not time_scale > 0:
            raise HadisError(f"time scale must be > 0, got {time_scale}")
        self.profile = profile
        self.time_scale = time_scale
        self.switch_delay_s = switch_delay_s
        self._kept = Residency(profile, host_cache)

    def load(self, model: str) -> float:
        start = time.perf_counter()
        variant = self.profile.model(model)
        seconds = switch_seconds(self._kept.move(variant), variant, self.switch_delay_s)
        time.sleep(seconds * self.time_scale)
        return time.perf_counter() - start

    def generate(
        self, model: str, prompts: list[str], seeds: list[int], size: tuple[int, int]
    ) -> BatchOutput:
        start = time.perf_counter()
        target = self.profile.model(model).batch_latency_s(len(prompts)) * self.time_scale
        images = [placeholder_png(model, tuple(size)) for _ in prompts]
        remaining = target - (time.perf_counter() - start)
        if remaining > 0:
            time.sleep(remaining)
        return BatchOutput(images, time.perf_counter() - start)


class InstantExecutor:
    """Benchmark executor: returns placeholder images at once and loads models instantly,
    so that what is measured is the data plane alone (HTTP, routing, engine, threads)."""

    name = "instant"

    def load(self, model: str) -> float:
        return 0.0

    def generate(
        self, model: str, prompts: list[str], seeds: list[int], size: tuple[int, int]
    ) -> BatchOutput:
        return BatchOutput([placeholder_png(model, tuple(size)) for _ in prompts], 0.0)


def _quiet_model_loading() -> None:
    """No progress bars or advice (e.g. 'install accelerate') from diffusers and
    transformers while pipelines load: workers load in parallel and their bars would
    interleave. Left as they are when hadis logs at debug level."""
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        return
    import diffusers
    import transformers

    for lib in (diffusers.utils.logging, transformers.utils.logging):
        lib.set_verbosity_error()
        lib.disable_progress_bar()


class DiffusersExecutor:
    """Runs real diffusers pipelines: `DiffusionPipeline.from_pretrained(source)` of the
    profile's model (a model id or a local path), with the profile's steps and guidance,
    per-query seeds, on `device` in `dtype`. Moving between variants of the same source
    (other steps or guidance) reloads nothing. The pipelines it moves off stay on the
    device while the profile says their weights fit there (`device_memory_gib`), so moving
    back costs nothing; the last `host_cache` others stay in host memory (on the CPU), so
    moving back is a copy to the device, not a load from disk (each costs host RAM: a
    pipeline's size in its dtype). The rule is the engine's (core/residency.py).
    """

    name = "diffusers"

    def __init__(
        self,
        profile: Profile,
        device: str = "cpu",
        dtype: str = "float32",
        local_files_only: bool = False,
        host_cache: int = HOST_CACHE,
    ) -> None:
        try:
            import torch  # noqa: F401
            from diffusers import DiffusionPipeline  # noqa: F401
        except ImportError as e:
            raise HadisError(
                "the diffusers executor needs the [diffusion] extra: "
                "pip install 'hadis[diffusion]' (and a torch build for your device)"
            ) from e
        _quiet_model_loading()
        unservable = [m.name for m in profile.models if m.source is None or m.steps is None]
        if unservable:
            raise HadisError(
                f"profile {profile.name!r} is simulation-only (no source/steps for "
                f"{', '.join(unservable)}); serve it with --executor profile"
            )
        self.profile = profile
        self.device = device
        self.dtype = dtype
        self.local_files_only = local_files_only
        self._model: str | None = None
        self._pipe = None
        self._kept = Residency(profile, host_cache)
        self._pipes: dict[str, Any] = {}  # weights -> pipeline, on the device or the CPU

    def load(self, model: str) -> float:
        start = time.perf_counter()
        variant = self.profile.model(model)
        weights = variant.weights
        if weights not in self._pipes:  # neither on the device nor in host memory
            self._pipes[weights] = self._from_disk(variant)
        if self._kept.move(variant) is not Found.ACTIVE:  # else: the same pipeline
            # off the device first (what no longer fits frees its memory), then onto it
            for w in list(self._pipes):
                if w in self._kept.host:
                    self._pipes[w] = self._pipes[w].to("cpu")
                elif w not in self._kept.device:
                    del self._pipes[w]
            for w in self._kept.device:
                self._pipes[w] = self._pipes[w].to(self.device)
        self._pipe = self._pipes[weights]
        self._model = model
        return time.perf_counter() - start

    def memory_gib(self) -> float:
        """Memory (GiB) the active pipeline's weights take: its modules' parameters and
        buffers, in the dtype they were loaded in (what `ModelVariant.memory_gib` says)."""
        import torch

        total = 0
        for part in getattr(self._pipe, "components", {}).values():
            if isinstance(part, torch.nn.Module):
                tensors = itertools.chain(part.parameters(), part.buffers())
                total += sum(t.numel() * t.element_size() for t in tensors)
        return total / 2**30

    def _from_disk(self, variant: ModelVariant) -> Any:
        import diffusers
        import torch

        # diffusers >= 0.40 renamed torch_dtype to dtype
        dtype_key = "dtype" if _version_at_least(diffusers.__version__, 0, 40) else "torch_dtype"
        source = bundled.resolve(variant.source)  # type: ignore[arg-type]
        try:
            pipe = pipeline_class(source).from_pretrained(
                source,
                local_files_only=self.local_files_only,
                **{dtype_key: getattr(torch, self.dtype)},
            )
        except Exception as e:
            raise HadisError(
                f"cannot load model {variant.name!r} from {variant.source!r}: {e}"
            ) from e
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def generate(
        self, model: str, prompts: list[str], seeds: list[int], size: tuple[int, int]
    ) -> BatchOutput:
        import torch

        if self._model != model:
            self.load(model)
        variant = self.profile.model(model)
        start = time.perf_counter()
        generators = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]
        out = self._pipe(  # type: ignore[misc]
            prompt=prompts,
            num_inference_steps=variant.steps,
            guidance_scale=variant.guidance,
            height=size[1],
            width=size[0],
            generator=generators,
            output_type="pil",
        )
        images = [png_bytes(img) for img in out.images]
        return BatchOutput(images, time.perf_counter() - start)


# Pipeline classes of this project that folders may be saved with (diffusers only knows its
# own): class name -> module.
PROJECT_PIPELINES = {"HadisDemoPipeline": "hadis.demo.pipeline"}


def pipeline_class(source: str):
    """DiffusionPipeline, or the project's own pipeline class for folders saved with it."""
    from diffusers import DiffusionPipeline

    index = Path(source) / "model_index.json"
    if index.is_file():
        try:
            name = json.loads(index.read_text()).get("_class_name")
        except (OSError, ValueError):
            name = None
        module = PROJECT_PIPELINES.get(name or "")
        if module is not None:
            return getattr(importlib.import_module(module), name)
    return DiffusionPipeline


def _version_at_least(version: str, major: int, minor: int) -> bool:
    parts = version.split(".")
    try:
        return (int(parts[0]), int(parts[1])) >= (major, minor)
    except (ValueError, IndexError):
        return True


@dataclass(frozen=True)
class ExecutorSettings:
    """What `hadis serve` knows that an executor may need."""

    profile: Profile
    time_scale: float = 1.0
    switch_delay_s: float = SWITCH_DELAY_S
    device: str = "cpu"
    dtype: str = "float32"
    local_files_only: bool = False
    host_cache: int = HOST_CACHE  # models a worker keeps in host memory besides its own


# name -> (settings -> a callable that builds one executor per worker). An executor is one
# module: register it here by name; the workers package imports each of its modules.
ExecutorFactory = Callable[[ExecutorSettings], Callable[[], Executor]]
_EXECUTORS: Registry[ExecutorFactory] = Registry("executor")
register_executor = _EXECUTORS.register
executor_names = _EXECUTORS.names


@register_executor("diffusers")
def _diffusers(s: ExecutorSettings) -> Callable[[], Executor]:
    DiffusersExecutor(s.profile, s.device, s.dtype, s.local_files_only)  # fail fast on imports
    return lambda: DiffusersExecutor(s.profile, s.device, s.dtype, s.local_files_only, s.host_cache)


@register_executor("profile")
def _profile(s: ExecutorSettings) -> Callable[[], Executor]:
    return lambda: ProfileExecutor(s.profile, s.time_scale, s.switch_delay_s, s.host_cache)


@register_executor("instant")
def _instant(s: ExecutorSettings) -> Callable[[], Executor]:
    return InstantExecutor


def make_executor_factory(name: str, profile: Profile, **settings: Any) -> Callable[[], Executor]:
    """A callable that builds one executor per worker."""
    return executor_factory(name, ExecutorSettings(profile, **settings))


def executor_factory(name: str, settings: ExecutorSettings) -> Callable[[], Executor]:
    """A callable that builds one executor per worker, from settings (plain data: a remote
    worker builds its executor from the same settings)."""
    return _EXECUTORS.get(name)(settings)
