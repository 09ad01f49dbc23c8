"""The learned router on the demo pool, end to end on real images (docs/router.md).

    python scripts/demo_router_images.py --out router-study          # ~25 min CPU, 15 s GPU
    python scripts/demo_router_study.py --images router-study         # ~3 min

1. Adherence of every image (hadis.demo.adherence), cached in IMAGES/adherence.npz.
2. Labels: per training prompt and image seed, whether the light (tiny-4) and the heavy
   (base-25) image satisfy every clause -> IMAGES/labels.csv; then the router is trained
   exactly as `hadis router train --labels IMAGES/labels.csv --out ROUTER` does.
3. Held-out prompts (world stream 3, never used for training or profiling), at heavy
   fractions 0.2 / 0.4 / 0.6: router-only (r = f, d = 0) and hybrid (r = f/2, the demo
   discriminator escalating the least confident light images to reach f) configurations,
   served with the learned router, the rule router (the paper's eight features) and
   random routing, for each of the image seeds. Adherence (share of images with every
   clause right) and world FID against renders of the same prompts, mean over seeds, with
   95% paired bootstrap intervals over prompts for learned minus rule and learned minus
   random -> OUT (JSON) and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

LIGHT, HEAVY = "tiny-4", "base-25"
FRACTIONS = (0.2, 0.4, 0.6)
ROUTERS = ("learned", "rule", "random")
RANDOM_DRAWS = 5


def load(folder: Path, name: str) -> np.ndarray:
    return np.load(folder / f"{name}.npz")["a"]


def adherence(folder: Path) -> dict[str, np.ndarray]:
    """ok[set_variant] (n, k) booleans: every clause of the prompt holds."""
    from PIL import Image

    from hadis.demo.adherence import analyse, check_spec, parse_prompt

    cache = folder / "adherence.npz"
    if cache.exists():
        with np.load(cache) as d:
            return {k: d[k] for k in d.files}
    out = {}
    for s in ("train", "test"):
        specs = [parse_prompt(str(p)) for p in load(folder, f"{s}_prompts")]
        for v in (LIGHT, HEAVY):
            arr = load(folder, f"{s}_{v}")
            out[f"{s}_{v}"] = np.array(
                [
                    [check_spec(analyse(Image.fromarray(img)), specs[i]).ok for img in arr[i]]
                    for i in range(len(arr))
                ]
            )
    np.savez(cache, **out)
    return out


def write_labels(folder: Path, ok: dict[str, np.ndarray]) -> Path:
    path = folder / "labels.csv"
    prompts = load(folder, "train_prompts")
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["prompt", "light", "heavy"])
        for i, p in enumerate(prompts):
            for k in range(ok[f"train_{LIGHT}"].shape[1]):
                w.writerow(
                    [str(p), int(ok[f"train_{LIGHT}"][i, k]), int(ok[f"train_{HEAVY}"][i, k])]
                )
    return path


def routed(scores: np.ndarray, r: float) -> np.ndarray:
    mask = np.zeros(len(scores), dtype=bool)
    mask[np.argsort(-scores, kind="stable")[: int(round(r * len(scores)))]] = True
    return mask


def heavy_mask(scores: np.ndarray, conf: np.ndarray, f: float, hybrid: bool) -> np.ndarray:
    """Which prompts get the heavy image: the router's top r, then the least confident d
    of the rest, with r + (1 - r) d = f."""
    if not hybrid:
        return routed(scores, f)
    r = f / 2
    d = (f - r) / (1 - r)
    mask = routed(scores, r)
    rest = np.flatnonzero(~mask)
    mask[rest[np.argsort(conf[rest], kind="stable")[: int(round(d * len(rest)))]]] = True
    return mask


def main() -> None:
    import torch
    from PIL import Image

    from hadis import bundled
    from hadis.demo.features import make_world_features
    from hadis.demo.world import example
    from hadis.fid import FidScorer
    from hadis.routing.features import OnlineRouter
    from hadis.routing.learned import LearnedRouter
    from hadis.routing.trained import TrainedDiscriminator
    from hadis.routing.training import csv_data, train_router

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=Path, required=True, help="demo_router_images.py output")
    ap.add_argument("--router", type=Path, default=Path("src/hadis/data/demo/router.json"))
    ap.add_argument("--out", type=Path, default=Path("docs/results/demo_router_study.json"))
    ap.add_argument("--bootstrap", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    ok = adherence(args.images)
    labels = write_labels(args.images, ok)
    router, cv = train_router(csv_data(labels), "gap", 5, args.seed, 3.0)
    router.save(args.router)
    router = LearnedRouter.load(args.router)
    print(f"trained {args.router} on {labels}; cross-validation: {json.dumps(cv)}")

    prompts = [str(p) for p in load(args.images, "test_prompts")]
    n = len(prompts)
    light_img, heavy_img = load(args.images, f"test_{LIGHT}"), load(args.images, f"test_{HEAVY}")
    seeds = light_img.shape[1]
    ok_l, ok_h = ok[f"test_{LIGHT}"], ok[f"test_{HEAVY}"]
    disc = TrainedDiscriminator.load(bundled.resolve("hadis:demo/discriminator"))
    conf = np.stack(
        [disc.p_real([Image.fromarray(light_img[i, k]) for i in range(n)]) for k in range(seeds)],
        axis=1,
    )
    reference = [example(3, i)[0] for i in range(n)]
    scorer = FidScorer(make_world_features(), reference)

    def feats(arr: np.ndarray) -> np.ndarray:
        return np.stack(
            [
                scorer.features([Image.fromarray(arr[i, k]) for i in range(n)]).numpy()
                for k in range(seeds)
            ],
            axis=1,
        )

    f_l, f_h = feats(light_img), feats(heavy_img)
    rng = np.random.default_rng(args.seed)
    scores = {
        "learned": [router.score_many(prompts)],
        "rule": [OnlineRouter().score_many(prompts)],
        "random": [rng.random(n) for _ in range(RANDOM_DRAWS)],
    }

    def served(
        router_name: str, f: float, hybrid: bool, k: int, idx: np.ndarray
    ) -> tuple[float, float]:
        """Adherence and FID of seed k's served images over prompts idx (mean over draws)."""
        oks, fids = [], []
        for s in scores[router_name]:
            m = heavy_mask(s, conf[:, k], f, hybrid)[idx]
            oks.append(float(np.where(m, ok_h[idx, k], ok_l[idx, k]).mean()))
            mixed = np.where(m[:, None], f_h[idx, k], f_l[idx, k])
            fids.append(scorer.fid(torch.from_numpy(mixed)))
        return float(np.mean(oks)), float(np.mean(fids))

    # How much can any routing move FID here? Route by the held-out prompts' own true
    # adherence gap (hindsight: the best ordering for adherence) and by its reverse.
    true_gap = (ok_h.astype(float) - ok_l).mean(axis=1)
    scores["hindsight"] = [true_gap]
    scores["reverse hindsight"] = [-true_gap]
    spread = {
        name: {
            f"{f:.1f}": np.mean(
                [served(name, f, False, k, np.arange(n)) for k in range(seeds)], axis=0
            )
            .round(4)
            .tolist()
            for f in FRACTIONS
        }
        for name in ("hindsight", "reverse hindsight")
    }
    print(f"router-only, [adherence, FID] by fraction: {json.dumps(spread)}", flush=True)

    boot = [rng.integers(0, n, n) for _ in range(args.bootstrap)]
    everyone = np.arange(n)
    results = []
    for hybrid in (False, True):
        for f in FRACTIONS:
            row: dict = {"config": "hybrid" if hybrid else "router-only", "heavy_fraction": f}
            point = {
                name: np.array([served(name, f, hybrid, k, everyone) for k in range(seeds)])
                for name in ROUTERS
            }
            for name in ROUTERS:
                row[name] = {
                    "adherence": float(point[name][:, 0].mean()),
                    "fid": float(point[name][:, 1].mean()),
                    "adherence_per_seed": point[name][:, 0].round(4).tolist(),
                    "fid_per_seed": point[name][:, 1].round(4).tolist(),
                }
            diffs: dict[str, list[np.ndarray]] = {"rule": [], "random": []}
            for idx in boot:
                est = {
                    name: np.mean([served(name, f, hybrid, k, idx) for k in range(seeds)], axis=0)
                    for name in ROUTERS
                }
                for other in diffs:
                    diffs[other].append(est["learned"] - est[other])
            for other, d in diffs.items():
                arr = np.array(d)
                lo, hi = np.percentile(arr, [2.5, 97.5], axis=0)
                row[f"learned_minus_{other}"] = {
                    "adherence": [float(lo[0]), float(hi[0])],
                    "fid": [float(lo[1]), float(hi[1])],
                }
            results.append(row)
            print(json.dumps(row), flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "light": LIGHT,
                "heavy": HEAVY,
                "train_prompts": len(load(args.images, "train_prompts")),
                "test_prompts": n,
                "image_seeds": seeds,
                "bootstrap": args.bootstrap,
                "cross_validation": cv,
                "results": results,
                "hindsight_router_only": spread,
            },
            indent=1,
        )
    )
    print(markdown(results))


def markdown(results: list[dict]) -> str:
    lines = [
        "| config | f | adherence learned / rule / random | learned - rule [95% CI] "
        "| FID learned / rule / random | learned - rule [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    for row in results:
        a = " / ".join(f"{row[r]['adherence']:.3f}" for r in ROUTERS)
        q = " / ".join(f"{row[r]['fid']:.2f}" for r in ROUTERS)
        da, dq = row["learned_minus_rule"]["adherence"], row["learned_minus_rule"]["fid"]
        lines.append(
            f"| {row['config']} | {row['heavy_fraction']:.1f} | {a} | "
            f"[{da[0]:+.3f}, {da[1]:+.3f}] | {q} | [{dq[0]:+.2f}, {dq[1]:+.2f}] |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
