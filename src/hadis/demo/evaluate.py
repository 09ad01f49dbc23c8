"""Measure demo models: prompt adherence on easy and hard prompts, FID, latency.

The test prompts are captions of a seed stream the models never trained on (training uses
seed 0; evaluation seed 1 by default), rendered scenes of the same stream are the FID
reference. Easy = one object, hard = two or three objects with spatial relations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

from hadis.demo.adherence import analyse, check_spec, parse_prompt
from hadis.demo.world import Scene, example

EVAL_SEED = 1


@dataclass(frozen=True)
class VariantRun:
    """One served variant: a trained model folder sampled with `steps` and `guidance`."""

    name: str
    model: str
    steps: int
    guidance: float


def eval_examples(n: int, seed: int = EVAL_SEED) -> list[tuple[Image.Image, str, Scene]]:
    return [example(seed, i) for i in range(n)]


def generate(
    pipe,
    prompts: list[str],
    steps: int,
    guidance: float,
    batch: int = 16,
) -> list[Image.Image]:
    """Images for prompts; prompt i uses seed i (as the profiler does)."""
    import torch

    images: list[Image.Image] = []
    for k in range(0, len(prompts), batch):
        chunk = prompts[k : k + batch]
        gens = [torch.Generator().manual_seed(k + i) for i in range(len(chunk))]
        out = pipe(chunk, num_inference_steps=steps, guidance_scale=guidance, generator=gens)
        images.extend(out.images)
    return images


def adherence_report(images: list[Image.Image], prompts: list[str]) -> dict[str, float]:
    """Share of images that satisfy every clause, and the mean share of clauses, for easy
    and hard prompts."""
    res: dict[str, list[tuple[bool, float]]] = {"easy": [], "hard": []}
    for img, prompt in zip(images, prompts, strict=True):
        spec = parse_prompt(prompt)
        if spec is None:
            continue
        a = check_spec(analyse(img), spec)
        res["hard" if spec.hard else "easy"].append((a.ok, a.score))
    out: dict[str, float] = {}
    for kind, vals in res.items():
        out[f"{kind}_n"] = len(vals)
        out[f"{kind}_ok"] = float(np.mean([v[0] for v in vals])) if vals else float("nan")
        out[f"{kind}_score"] = float(np.mean([v[1] for v in vals])) if vals else float("nan")
    return out


def fid(images: list[Image.Image], reference: list[Image.Image]) -> float:
    from hadis.demo.features import make_world_features
    from hadis.fid import FidScorer

    scorer = FidScorer(make_world_features(), reference)
    return scorer.fid(scorer.features(images))


def batch_latency(
    pipe,
    steps: int,
    guidance: float,
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8),
    repeats: int = 3,
) -> dict[int, float]:
    """Median seconds per batch (after one warm-up)."""
    out = {}
    for b in batch_sizes:
        prompts = ["a red circle left of a blue square"] * b
        generate(pipe, prompts, steps, guidance, batch=b)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            generate(pipe, prompts, steps, guidance, batch=b)
            times.append(time.perf_counter() - start)
        out[b] = float(np.median(times))
    return out
