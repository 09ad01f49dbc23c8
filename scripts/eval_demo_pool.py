"""Measure demo models: adherence on easy and hard prompts, FID and latency per variant.

    python scripts/eval_demo_pool.py --models src/hadis/data/demo/models --n 400

A variant is MODEL:STEPS:GUIDANCE (a trained model folder sampled with that many steps and
that classifier-free guidance scale). Prints a table and writes JSON (and a sample grid).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image

from hadis.demo.evaluate import (
    adherence_report,
    batch_latency,
    eval_examples,
    fid,
    generate,
)
from hadis.demo.pipeline import HadisDemoPipeline

DEFAULT_VARIANTS = ["tiny:4:0", "base:8:2.5", "base:25:2.5"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, required=True)
    ap.add_argument("--variants", nargs="*", default=DEFAULT_VARIANTS)
    ap.add_argument("--n", type=int, default=400, help="Test prompts.")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--latency", action="store_true", help="Also time batches 1/2/4/8.")
    ap.add_argument("--ddim", action="store_true", help="Sample with DDIM (default: saved).")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--grid", type=Path, default=None, help="PNG of the first 16 samples.")
    args = ap.parse_args()
    import torch

    examples = eval_examples(args.n)
    prompts = [e[1] for e in examples]
    reference = [e[0] for e in examples]
    results, rows = {}, [reference[:16]]
    pipes = {}
    for v in args.variants:
        model, steps, guidance = v.split(":")
        if model not in pipes:
            pipes[model] = HadisDemoPipeline.from_pretrained(
                args.models / model, local_files_only=True, dtype=torch.float32
            ).to(args.device)
            pipes[model].set_progress_bar_config(disable=True)
            if args.ddim:
                from diffusers import DDIMScheduler

                pipes[model].scheduler = DDIMScheduler.from_config(
                    pipes[model].scheduler.config, clip_sample=True, timestep_spacing="trailing"
                )
        images = generate(pipes[model], prompts, int(steps), float(guidance), batch=50)
        r = adherence_report(images, prompts)
        r["fid"] = fid(images, reference)
        if args.latency:
            r["latency_s"] = batch_latency(pipes[model], int(steps), float(guidance))
        results[v] = r
        rows.append(images[:16])
        print(
            f"{v:<14} easy ok {r['easy_ok']:.3f} score {r['easy_score']:.3f} | "
            f"hard ok {r['hard_ok']:.3f} score {r['hard_score']:.3f} | FID {r['fid']:.2f}"
            + (f" | latency {r['latency_s']}" if args.latency else ""),
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps({"n": args.n, "variants": results}, indent=1))
    if args.grid:
        s = 32
        grid = Image.new("RGB", (16 * s, len(rows) * s))
        for y, row in enumerate(rows):
            for x, img in enumerate(row):
                grid.paste(img, (x * s, y * s))
        grid.resize((16 * s * 3, len(rows) * s * 3), Image.Resampling.NEAREST).save(args.grid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
