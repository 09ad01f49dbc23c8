"""Bundle the per-prompt reference data the simulator needs (run from the repo root).

  python scripts/build_reference_data.py [SHARED_DATA_DIR]

Writes src/hadis/data/reference/hadis_reference.npz (router features, discriminator P_real),
prompts.txt and src/hadis/data/traces/azure_functions_shape.csv. See src/hadis/data/README.md.
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import numpy as np

from hadis.routing.features import FEATURE_NAMES as FEATURES


def main(shared: Path) -> None:
    out = Path("src/hadis/data")
    with open(shared / "hadis" / "router_features.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    features = np.array([[int(r[f]) for f in FEATURES] for r in rows], dtype=np.int16)
    p_real = np.stack(
        [
            np.loadtxt(shared / "hadis" / "disc_scores" / f"model_{i}.txt")[:, 1].reshape(-1, 4)
            for i in range(4)
        ]
    ).astype(np.float32)  # (model, prompt, image)
    assert features.shape == (5000, 8) and p_real.shape == (4, 5000, 4)
    np.savez_compressed(
        out / "reference" / "hadis_reference.npz",
        features=features,
        feature_names=np.array(FEATURES),
        disc_p_real=p_real,
    )
    shutil.copy(shared / "hadis" / "prompts.txt", out / "reference" / "prompts.txt")
    shutil.copy(
        shared / "traces" / "azure_functions_shape.csv",
        out / "traces" / "azure_functions_shape.csv",
    )
    # the router's abstractness feature only needs the words with Conc.M < 2.5
    with open(shared / "lexicon" / "concreteness.csv", newline="") as fh:
        abstract = {r["Word"].lower() for r in csv.DictReader(fh) if float(r["Conc.M"]) < 2.5}
    (out / "lexicon").mkdir(exist_ok=True)
    (out / "lexicon" / "abstract_words.txt").write_text("\n".join(sorted(abstract)) + "\n")
    shutil.copy(shared / "lexicon" / "spatial_terms.txt", out / "lexicon" / "spatial_terms.txt")
    print("wrote", out / "reference", out / "traces")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("../shared/data"))
