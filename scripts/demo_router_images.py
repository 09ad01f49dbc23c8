"""Images of the demo pool for the learned-router study (docs/router.md).

    python scripts/demo_router_images.py --out router-study                 # ~25 min CPU
    python scripts/demo_router_images.py --device cuda --out router-study   # ~15 s H100

Two prompt sets of the procedural world, neither trained on by the demo models:
  train: stream seed 1, prompts 0..N-1 (the first 300 are the demo profile's prompts);
  test:  stream seed 3, prompts 0..M-1 (held out from router training and profiling).
Every variant of the pool draws K images per prompt; image k of prompt i uses seed
i + k * 1,000,000 (k = 0 is the profiler's seed i), so an image never depends on its
batch-mates and the CPU and GPU runs draw the same noise (their images differ by float
rounding: a mean of 0.03-0.13 grey levels out of 255 over 96 images). Output: OUT/<set>_prompts.npz
and OUT/<set>_<variant>.npz, each holding one array `a` (images: uint8, (n, K, 32, 32, 3)).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

SEED_STRIDE = 1_000_000
VARIANTS = {"tiny-4": ("tiny", 4, 0.0), "base-8": ("base", 8, 2.5), "base-25": ("base", 25, 2.5)}
SETS = {"train": 1, "test": 3}  # world stream seed per set


def prompts_of(stream_seed: int, n: int) -> list[str]:
    from hadis.demo.world import example

    return [example(stream_seed, i)[1] for i in range(n)]


def main() -> None:
    import torch

    from hadis import bundled
    from hadis.demo.pipeline import HadisDemoPipeline

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--train", type=int, default=1500, help="training prompts (stream 1)")
    ap.add_argument("--test", type=int, default=600, help="held-out prompts (stream 3)")
    ap.add_argument("--images", type=int, default=3, help="images per prompt and variant")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument(
        "--models", type=Path, default=None, help="model folders (default: the bundled ones)"
    )
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    sets = {
        "train": prompts_of(SETS["train"], args.train),
        "test": prompts_of(SETS["test"], args.test),
    }
    for name, prompts in sets.items():
        np.savez_compressed(args.out / f"{name}_prompts.npz", a=np.array(prompts))
    for variant in args.variants:
        model, steps, guidance = VARIANTS[variant]
        folder = (
            args.models / model if args.models else bundled.resolve(f"hadis:demo/models/{model}")
        )
        pipe = HadisDemoPipeline.from_pretrained(folder, local_files_only=True).to(args.device)
        start = time.perf_counter()
        for name, prompts in sets.items():
            jobs = [(i, k) for k in range(args.images) for i in range(len(prompts))]
            arr = np.zeros((len(prompts), args.images, 32, 32, 3), dtype=np.uint8)
            for b in range(0, len(jobs), args.batch):
                chunk = jobs[b : b + args.batch]
                gens = [torch.Generator().manual_seed(i + k * SEED_STRIDE) for i, k in chunk]
                images = pipe(
                    [prompts[i] for i, _ in chunk],
                    num_inference_steps=steps,
                    guidance_scale=guidance,
                    generator=gens,
                    output_type="np",
                ).images
                for (i, k), img in zip(chunk, images, strict=True):
                    arr[i, k] = img
            np.savez_compressed(args.out / f"{name}_{variant}.npz", a=arr)
        print(f"{variant}: {time.perf_counter() - start:.1f} s", flush=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
