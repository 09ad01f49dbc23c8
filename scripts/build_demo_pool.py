"""Build the bundled demo pool's discriminator and `demo-cpu` profile from trained models.

    python scripts/gpu_demo_pool.py --out OUT    # the models: ~5 min on a GPU (docs/demo.md)
    python scripts/build_demo_pool.py                                   # ~15 min

Steps (each through the hadis CLI, cached under --workdir so reruns resume):
  1. prompts: captions of the evaluation stream (seed 1, never trained on) and their
     renders (the FID reference), written to src/hadis/data/demo/prompts.txt;
  2. discriminator: real renders vs every variant's images for another stream (seed 2),
     `hadis discriminator train` -> src/hadis/data/demo/discriminator.{safetensors,json};
  3. profile: `hadis profile build` with the learned router (src/hadis/data/demo/router.json,
     from scripts/demo_router_study.py; `--router online` gives the paper's rule router),
     that discriminator and the world features -> src/hadis/data/profiles/demo-cpu.json
     (+ serving defaults); `--keep-latency` reuses the latencies the current profile
     measured instead of timing the variants again (a rebuild for another router);
  4. report: adherence on easy and hard prompts and FID per variant, and the latencies the
     profile measured -> src/hadis/data/demo/report.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

DATA = Path("src/hadis/data")
DISC_SEED = 2


def hadis(*args: str) -> None:
    exe = shutil.which("hadis") or str(Path(sys.executable).parent / "hadis")
    cmd = [exe, *args]
    print("$ hadis", " ".join(args), flush=True)
    subprocess.run(cmd, check=True)


def render_set(folder: Path, seed: int, n: int) -> list[str]:
    """Write the renders of the first n examples of a stream; return their captions."""
    from hadis.demo.world import example

    folder.mkdir(parents=True, exist_ok=True)
    captions = []
    for i in range(n):
        img, text, _ = example(seed, i)
        if not (folder / f"{i}.png").exists():
            img.save(folder / f"{i}.png")
        captions.append(text)
    return captions


def generate_set(folder: Path, pool_file: Path, prompts: list[str]) -> None:
    """Every variant's images for the prompts (seed = prompt index), cached per file."""
    from hadis.profiling import load_pool
    from hadis.profiling.profiler import generate_images, profile_stub
    from hadis.workers.executors import DiffusersExecutor

    spec = load_pool(pool_file)
    executor = DiffusersExecutor(profile_stub(spec), spec.device, spec.dtype, True)
    generate_images(executor, spec.variants, prompts, folder)


def report(workdir: Path, pool_file: Path, prompts: list[str], profile_file: Path) -> dict:
    from PIL import Image

    from hadis.demo.evaluate import adherence_report, fid
    from hadis.profiles import load_profile
    from hadis.profiling import load_pool

    spec = load_pool(pool_file)
    profile = load_profile(profile_file)
    reference = [Image.open(workdir / "reference" / f"{i}.png") for i in range(len(prompts))]
    out = {"prompts": len(prompts), "variants": {}}
    for v in spec.variants:
        folder = workdir / "profile" / "images" / v.name
        images = [Image.open(folder / f"{i}.png") for i in range(len(prompts))]
        r = adherence_report(images, prompts)
        r["fid_world"] = fid(images, reference)
        r["latency_s"] = profile.model(v.name).latency_s
        out["variants"][v.name] = r
    return out


def keep_latency(profile_file: Path, workdir: Path) -> None:
    """Seed the profiler's latency cache with the profile's measured medians and p95s."""
    doc = json.loads(profile_file.read_text())
    cache = {
        m["name"]: {b: [s, m["extra"]["latency_p95_s"][b]] for b, s in m["latency_s"].items()}
        for m in doc["models"]
    }
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "latency.json").write_text(json.dumps(cache, indent=1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("demo-work"))
    ap.add_argument("--pool", type=Path, default=DATA / "demo" / "pool.yaml")
    ap.add_argument("--prompts", type=int, default=300, help="Profiling prompts.")
    ap.add_argument("--disc-images", type=int, default=400, help="Per class and variant.")
    ap.add_argument("--router", default="learned:hadis:demo/router.json")
    ap.add_argument("--keep-latency", action="store_true")
    args = ap.parse_args()
    w = args.workdir
    w.mkdir(parents=True, exist_ok=True)

    prompts = render_set(w / "reference", 1, args.prompts)
    prompt_file = DATA / "demo" / "prompts.txt"
    prompt_file.write_text("\n".join(prompts) + "\n")

    disc = DATA / "demo" / "discriminator"
    if not disc.with_suffix(".json").exists():
        disc_prompts = render_set(w / "disc" / "real", DISC_SEED, args.disc_images)
        generate_set(w / "disc" / "generated", args.pool, disc_prompts)
        hadis(
            "discriminator", "train",
            "--real", str(w / "disc" / "real"),
            "--generated", str(w / "disc" / "generated"),
            "--out", str(disc),
            "--image-size", "32",
            "--epochs", "15",
        )  # fmt: skip

    profile_file = DATA / "profiles" / "demo-cpu.json"
    if args.keep_latency:
        keep_latency(profile_file, w / "profile")
    hadis(
        "profile", "build",
        "--pool", str(args.pool),
        "--prompts", str(prompt_file),
        "--reference", str(w / "reference"),
        "--out", str(profile_file),
        "--workdir", str(w / "profile"),
        "--router", args.router,
        "--discriminator", "trained:hadis:demo/discriminator",
        "--features", "world",
        "--repeats", "5",
    )  # fmt: skip
    doc = json.loads(profile_file.read_text())
    doc["serving"] = {
        "executor": "diffusers",
        "router": args.router,
        "discriminator": "trained:hadis:demo/discriminator",
        "workers": 2,
        "slo_s": 5.0,
    }
    profile_file.write_text(json.dumps(doc, indent=1) + "\n")

    rep = report(w, args.pool, prompts, profile_file)
    (DATA / "demo" / "report.json").write_text(json.dumps(rep, indent=1) + "\n")
    print(json.dumps(rep, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
