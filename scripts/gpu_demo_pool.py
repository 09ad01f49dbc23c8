"""Train the demo pool's models on one CUDA GPU and draw the heavy model's study images.

    python scripts/gpu_demo_pool.py --out OUT        # ~5 min on an H100

How the bundled models (src/hadis/data/demo/models) were made:
  1. three trainings at once on the GPU (scripts/train_demo_pool.py, batch rendering in 4
     worker processes each): `base` and `tiny` as hadis.demo.train.DEMO_MODELS specifies
     (the tiny model never sees a white background), and, for the comparison in
     docs/router.md, `tiny` trained on every background;
  2. `base-25` images of the router study's prompt sets (scripts/demo_router_images.py;
     the tiny model's images are cheap on a CPU);
  3. OUT/base.tgz (main/base), OUT/tiny.tgz (main/tiny, no_gap/tiny), OUT/images.tar.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--step-scale", default="1", help="Passed to train_demo_pool.py.")
    ap.add_argument("--max-seconds", default="330", help="Stop a training early (lease limits).")
    ap.add_argument("--train", type=int, default=1500, help="Study training prompts.")
    ap.add_argument("--test", type=int, default=600, help="Study held-out prompts.")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp())
    common = [
        "--device", args.device, "--step-scale", args.step_scale,
        "--workers", "4", "--max-seconds", args.max_seconds,
    ]  # fmt: skip
    runs = {
        "base": ["--models", "base", "--out", str(work / "main")],
        "tiny": ["--models", "tiny", "--out", str(work / "main_tiny")],
        "no_gap": ["--models", "tiny", "--unseen-backgrounds", "--out", str(work / "no_gap")],
    }
    procs = {
        name: subprocess.Popen(
            [sys.executable, "scripts/train_demo_pool.py", *extra, *common],
            stdout=(work / f"{name}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        for name, extra in runs.items()
    }
    for name, proc in procs.items():
        log(f"{name}: exit {proc.wait()}")
        print((work / f"{name}.log").read_text()[-2000:], flush=True)
    (work / "main" / "tiny").symlink_to(work / "main_tiny" / "tiny")
    subprocess.run(
        [
            sys.executable, "scripts/demo_router_images.py", "--device", args.device,
            "--variants", "base-25", "--models", str(work / "main"), "--batch", "256",
            "--train", str(args.train), "--test", str(args.test),
            "--out", str(work / "images"),
        ],
        check=True,
    )  # fmt: skip
    log("images done")
    tar = ["tar", "--dereference", "-C", str(work)]
    subprocess.run([*tar, "-czf", str(args.out / "base.tgz"), "main/base"], check=True)
    subprocess.run([*tar, "-czf", str(args.out / "tiny.tgz"), "main/tiny", "no_gap"], check=True)
    subprocess.run([*tar, "-cf", str(args.out / "images.tar"), "images"], check=True)
    log("packed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
