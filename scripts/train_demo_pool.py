"""Train the demo pool's text-to-image models (hadis.demo.train.DEMO_MODELS).

    python scripts/train_demo_pool.py --out src/hadis/data/demo/models

Writes one diffusers pipeline folder per model and train_summary.json. Seeded: the same
seed and machine give the same weights (on a GPU, up to its nondeterministic kernels).
The committed models were trained on a lent H100 by scripts/gpu_demo_pool.py (2.3 and 3.5
minutes); on a 2-core CPU expect about 3 hours (the earlier, 3x smaller budget took 57 min).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from hadis.demo.train import DEMO_MODELS, train_model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", nargs="*", default=[m.name for m in DEMO_MODELS])
    ap.add_argument("--step-scale", type=float, default=1.0, help="Scale training steps.")
    ap.add_argument("--batch", type=int, default=None, help="Examples per step (default: spec).")
    ap.add_argument("--workers", type=int, default=0, help="Batch-rendering processes.")
    ap.add_argument(
        "--max-seconds", type=float, default=None, help="Stop each model's training early."
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--unseen-backgrounds",
        nargs="*",
        default=None,
        help="Backgrounds the models never see in training (default: each spec's; the bundled"
        " tiny model never saw white, docs/router.md). Given with no value: none.",
    )
    args = ap.parse_args()
    summaries = []
    for spec in DEMO_MODELS:
        if spec.name not in args.models:
            continue
        spec = dataclasses.replace(
            spec,
            steps=max(1, round(spec.steps * args.step_scale)),
            seed=args.seed,
            batch=args.batch or spec.batch,
        )
        if args.unseen_backgrounds is not None:
            spec = dataclasses.replace(spec, unseen_backgrounds=tuple(args.unseen_backgrounds))
        last = [0.0]

        def report(
            step: int, steps: int, loss: float, name: str = spec.name, last: list = last
        ) -> None:
            if time.monotonic() - last[0] > 30 or step == steps:
                last[0] = time.monotonic()
                print(f"{name}: step {step}/{steps} loss {loss:.4f}", flush=True)

        summary = train_model(
            spec, args.out / spec.name, args.device, report, args.workers, args.max_seconds
        )
        summary["spec"] = dataclasses.asdict(spec)
        summaries.append(summary)
        print(json.dumps(summary), flush=True)
    (args.out / "train_summary.json").write_text(json.dumps(summaries, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
