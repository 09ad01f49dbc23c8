"""The README's demo images: light vs heavy for the same prompts, and an escalated case.

    python scripts/demo_images.py --out docs/img

Uses the bundled demo-cpu profile's variants through the diffusers executor (as served),
the bundled discriminator and the adherence checker; images are upscaled 6x (nearest).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from PIL import Image, ImageDraw

from hadis.demo.adherence import check
from hadis.profiles import load_profile
from hadis.routing.simple import make_discriminator
from hadis.workers.executors import DiffusersExecutor

PROMPTS = [
    "a large red square on a black background",
    "a small yellow circle on a white background",  # the light model's blind spot
    "a red circle left of a blue square on a gray background",
    "a green triangle above a purple diamond on a white background",
]
SEEDS = range(10)
SCALE = 6
ESCALATE_D = 0.3  # the discriminator ratio the escalation example uses


def _big(png: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(png)).convert("RGB")
    return img.resize((32 * SCALE, 32 * SCALE), Image.Resampling.NEAREST)


def _sheet(cells: list[list[tuple[Image.Image, str]]], header: list[str]) -> Image.Image:
    """Rows of (image, caption) cells under a header row."""
    h, pad, col = 32 * SCALE, 40, 32 * SCALE + 70  # col: room for captions
    sheet = Image.new("RGB", (len(header) * col + 8, len(cells) * (h + pad) + 30), "white")
    d = ImageDraw.Draw(sheet)
    for c, text in enumerate(header):
        d.text((8 + c * col, 8), text, fill="black")
    for r, row in enumerate(cells):
        for c, (img, caption) in enumerate(row):
            x, y = 8 + c * col, 30 + r * (h + pad)
            sheet.paste(img, (x, y))
            d.text((x, y + h + 4), caption, fill="black")
    return sheet


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    profile = load_profile("demo-cpu")
    light, heavy = profile.models[0].name, profile.models[-1].name
    ex = DiffusersExecutor(profile, local_files_only=True)
    disc = make_discriminator(profile.serving.discriminator or "none", profile)

    def verdict(png: bytes, prompt: str) -> str:
        a = check(Image.open(io.BytesIO(png)), prompt)
        return f"{'OK' if a.ok else 'miss'} {a.score:.0%} of clauses"

    def ok(png: bytes, prompt: str) -> bool:
        return check(Image.open(io.BytesIO(png)), prompt).ok

    # per prompt: pass counts over seeds 0-9, shown at the first seed the heavy passes
    rows, prompts_text = [], []
    for k, prompt in enumerate(PROMPTS):
        seeds = list(SEEDS)
        lo = ex.generate(light, [prompt] * len(seeds), seeds, (32, 32)).images
        hi = ex.generate(heavy, [prompt] * len(seeds), seeds, (32, 32)).images
        n_lo, n_hi = sum(ok(b, prompt) for b in lo), sum(ok(b, prompt) for b in hi)
        s = next((i for i in seeds if ok(hi[i], prompt)), 0)
        rows.append(
            [
                (_big(lo[s]), f"seed {s}: {verdict(lo[s], prompt)}; {n_lo}/10 OK"),
                (_big(hi[s]), f"seed {s}: {verdict(hi[s], prompt)}; {n_hi}/10 OK"),
            ]
        )
        prompts_text.append(f"{k + 1}. {prompt}: light {n_lo}/10, heavy {n_hi}/10 seeds pass")
    args.out.mkdir(parents=True, exist_ok=True)
    _sheet(rows, [f"light: {light}", f"heavy: {heavy}"]).save(args.out / "demo-light-heavy.png")
    (args.out / "demo-light-heavy.txt").write_text("\n".join(prompts_text) + "\n")
    print("\n".join(prompts_text))

    # escalation: the first seed whose light image the discriminator sends to heavy at d
    # and whose heavy image passes
    prompt = PROMPTS[2]
    cut = disc.threshold(light, ESCALATE_D)
    for seed in range(50):
        lo = ex.generate(light, [prompt], [seed], (32, 32)).images[0]
        conf = disc.confidence(light, None, seed, lo)
        if conf < cut:
            hi = ex.generate(heavy, [prompt], [seed], (32, 32)).images[0]
            if not ok(hi, prompt):
                continue
            cells = [
                [
                    (_big(lo), f"P(real) {conf:.3f} < cut {cut:.3f} (d={ESCALATE_D})"),
                    (_big(hi), verdict(hi, prompt)),
                ]
            ]
            header = [f"{light}: escalated", f"{heavy}: served"]
            _sheet(cells, header).save(args.out / "demo-escalated.png")
            print(f"escalated: {prompt!r} seed {seed}; light {verdict(lo, prompt)}")
            break
    print(f"wrote {args.out}/demo-light-heavy.png and demo-escalated.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
