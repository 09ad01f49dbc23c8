"""Serve the demo pool on a CUDA device through the real HTTP app, and time its variants.

    python scripts/gpu_serve_check.py [--device cuda] [--out gpu_check.json]

1. `build_app(demo-cpu, executor="diffusers", device=...)` with the profile's learned router
   and trained discriminator, 2 workers; 32 concurrent requests in-process (httpx ASGI):
   every one must be a 200 with a 32x32 PNG; prints the paths taken and the share of
   images the adherence checker accepts.
2. `DiffusersExecutor` on the device: median seconds per batch (3 runs after a warm-up) for
   each variant at batch sizes 1, 8 and 64.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import statistics
import time
from collections import Counter
from pathlib import Path


async def serve_check(device: str) -> dict:
    import httpx
    from PIL import Image

    from hadis.demo.adherence import check
    from hadis.demo.world import example
    from hadis.profiles import load_profile
    from hadis.serve import ServeConfig, build_app

    profile = load_profile("demo-cpu")
    cfg = ServeConfig(workers=2, slo_s=5.0, initial_demand_qps=6.0)
    app = build_app(
        profile,
        cfg,
        executor="diffusers",
        router=profile.serving.router or "online",
        discriminator=profile.serving.discriminator or "none",
        device=device,
        local_files_only=True,
    )
    prompts = [example(7, i)[1] for i in range(32)]
    async with app.router.lifespan_context(app):
        while not app.state.service.ready:
            if app.state.service.workers.load_errors:
                raise RuntimeError(app.state.service.workers.load_errors)
            await asyncio.sleep(0.05)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://h", timeout=60) as c:
            start = time.perf_counter()
            rs = await asyncio.gather(
                *(c.post("/v1/images/generations", json={"prompt": p, "seed": 0}) for p in prompts)
            )
            wall = time.perf_counter() - start
    codes = Counter(r.status_code for r in rs)
    paths: Counter = Counter()
    ok = 0
    for p, r in zip(prompts, rs, strict=True):
        if r.status_code != 200:
            continue
        item = r.json()["data"][0]
        img = Image.open(io.BytesIO(base64.b64decode(item["b64_json"])))
        assert img.size == (32, 32), img.size
        paths[item["hadis"]["path"]] += 1
        result = check(img, p)
        ok += bool(result and result.ok)
    return {
        "codes": dict(codes),
        "paths": dict(paths),
        "adherence_ok": ok / len(prompts),
        "wall_s": round(wall, 3),
    }


def time_variants(device: str) -> dict:
    from hadis.profiles import load_profile
    from hadis.workers.executors import DiffusersExecutor

    profile = load_profile("demo-cpu")
    ex = DiffusersExecutor(profile, device, "float32", True)
    out: dict = {}
    for m in profile.models:
        ex.load(m.name)
        out[m.name] = {}
        for b in (1, 8, 64):
            prompts, seeds = ["a red circle left of a blue square"] * b, list(range(b))
            ex.generate(m.name, prompts, seeds, (32, 32))  # warm-up
            times = [ex.generate(m.name, prompts, seeds, (32, 32)).seconds for _ in range(3)]
            out[m.name][b] = round(statistics.median(times), 4)
    return out


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    report = {
        "device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "serve": asyncio.run(serve_check(args.device)),
        "seconds_per_batch": time_variants(args.device),
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
