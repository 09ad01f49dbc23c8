"""Build the bundled `hadis-l40s` profile from the reference data in ../shared/data/hadis.

Run from the repository root:  python scripts/build_hadis_l40s_profile.py [SHARED_DIR]
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from hadis.profiles import BatchRule, ConfigRow, Direction, Metric, ModelVariant, Profile
from hadis.profiles.io import save_profile

OUT = Path("src/hadis/data/profiles/hadis-l40s.json")
RULE_NOTE = (
    "Only batch-1 latencies were measured (NVIDIA L40S, 1024x1024). Larger batches follow the "
    "research code's assumption L(b) = 0.9 * b * L(1) for b > 1. A measurement of SD3.5-Large "
    "gave 2.21x at b=2 and 4.47x at b=4, so treat plans with large heavy batches as optimistic."
)


def main(shared: Path) -> None:
    data = shared / "hadis"
    with open(data / "models.csv") as fh:
        model_rows = list(csv.DictReader(fh))
    names = [row["name"] for row in model_rows]
    models = tuple(
        ModelVariant(
            name=row["name"],
            source=row["checkpoint"],
            steps=int(row["steps"]),
            guidance=float(row["guidance"]),
            resolution=(1024, 1024),
            quality_alone=float(row["fid_alone"]),
            latency_s={1: float(row["latency_bs1_s"])},
            max_batch=32,
            batch_rule=BatchRule(0.9),
            extra={"index": int(row["index"])},
            # the artifacts' weights size; the profile gives no device memory (the paper's
            # workers hold one model on the GPU), so no worker keeps two there
            memory_gib=float(row["weights_gib"]),
        )
        for row in model_rows
    )
    with open(data / "config_sweep.csv") as fh:
        configs = tuple(
            ConfigRow(
                light=names[int(row["light_model"])],
                heavy=names[int(row["heavy_model"])],
                r=round(float(row["router_ratio"]), 6),
                d=round(float(row["disc_ratio"]), 6),
                f=round(float(row["threshold"]), 6),
                quality=float(row["fid"]),
                latency_s=float(row["latency"]),
            )
            for row in csv.DictReader(fh)
        )
    profile = Profile(
        name="hadis-l40s",
        gpu_type="NVIDIA L40S",
        metric=Metric("FID", Direction.LOWER),
        models=models,
        configs=configs,
        description=(
            "The HADIS paper's four-model pool (SDXL-Lightning, SD3.5-Large-Turbo, SD3.5-Medium, "
            "SD3.5-Large) with its 726-row configuration sweep: 6 pairs x r x d in {0,0.1,..,1}."
        ),
        provenance=(
            "Copied from the HADIS research artifacts (arXiv 2509.00642): models.csv and "
            "config_sweep.csv of shared/data/hadis, via scripts/build_hadis_l40s_profile.py. "
            "FID = clean-FID on 5,000 ImageNet-caption prompts vs ImageNet images; latency_s = "
            "expected per-query seconds (1-r) L_light + f L_heavy from batch-1 latencies."
        ),
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    save_profile(profile, OUT, batch_rule_note=RULE_NOTE)
    print(f"wrote {OUT}: {len(models)} models, {len(configs)} configs")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("../shared/data"))
