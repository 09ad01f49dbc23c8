"""A learned prompt router: TF-IDF of words and word pairs (or sentence embeddings,
routing/embeddings.py), then a ridge regression.

It predicts, from the prompt text alone, how much the heavy model improves on the light
one for that prompt (or how badly the light model does), so that the router's top-r
fraction goes where the heavy model helps most (docs/router.md). Trained by
`hadis router train` (hadis.routing.training); no spaCy, no torch: scoring a prompt is a
tokenizer and a sparse dot product.

File format (JSON, no pickles): `format` "hadis-router", `version` 1, `model`
("tfidf-ridge": the tokenizer settings, the vocabulary, its idf weights; "minilm-ridge":
the encoder's name), the regression weights and intercept, `cuts`
(quantiles of the scores of unseen prompts, from cross-validation, so that r keeps
meaning "the top-r fraction" of new prompts) and `trained` (data, label, metrics).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hadis.errors import HadisError
from hadis.routing.base import cut_above
from hadis.routing.embeddings import EmbeddingRidge
from hadis.routing.registry import register_router

FORMAT = "hadis-router"
VERSION = 1
TOKEN = re.compile(r"[a-z0-9]+")
N_CUTS = 1001  # stored quantiles of the unseen-prompt scores


def tokens(text: str, ngrams: int = 2) -> list[str]:
    """Lower-cased words, then every run of up to `ngrams` consecutive words."""
    words = TOKEN.findall(text.lower())
    out = list(words)
    for n in range(2, ngrams + 1):
        out += [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    return out


@dataclass(frozen=True)
class TfidfRidge:
    """Sublinear TF-IDF (L2-normalised rows) and a ridge regression on it."""

    vocabulary: dict[str, int]
    idf: np.ndarray
    weights: np.ndarray
    intercept: float
    ngrams: int = 2
    kind = "tfidf-ridge"
    expensive = False  # a tokenizer and a sparse dot product: microseconds
    # per-term idf * weight and idf, as plain floats: the one-prompt hot path
    _terms: dict[str, tuple[float, float]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        terms = {
            t: (float(self.idf[i]), float(self.idf[i] * self.weights[i]))
            for t, i in self.vocabulary.items()
        }
        object.__setattr__(self, "_terms", terms)

    @classmethod
    def fit(
        cls,
        texts: list[str],
        y: np.ndarray,
        alpha: float = 3.0,
        min_df: int = 2,
        ngrams: int = 2,
    ) -> TfidfRidge:
        from scipy.sparse.linalg import lsqr

        docs = [tokens(t, ngrams) for t in texts]
        df: dict[str, int] = {}
        for d in docs:
            for t in set(d):
                df[t] = df.get(t, 0) + 1
        vocab = {t: i for i, t in enumerate(sorted(t for t, c in df.items() if c >= min_df))}
        if not vocab:
            raise HadisError(f"no word occurs in {min_df} or more training prompts")
        n = len(docs)
        idf = np.zeros(len(vocab))
        for t, i in vocab.items():
            idf[i] = math.log((1 + n) / (1 + df[t])) + 1
        x = _matrix(docs, vocab, idf)
        y = np.asarray(y, dtype=float)
        mean = float(y.mean())
        weights = lsqr(x, y - mean, damp=math.sqrt(alpha), atol=1e-10, btol=1e-10)[0]
        return cls(vocab, idf, weights, mean, ngrams)

    def predict(self, texts: list[str]) -> np.ndarray:
        docs = [tokens(t, self.ngrams) for t in texts]
        return _matrix(docs, self.vocabulary, self.idf) @ self.weights + self.intercept

    def predict_one(self, text: str) -> float:
        counts: dict[str, int] = {}
        for t in tokens(text, self.ngrams):
            if t in self._terms:
                counts[t] = counts.get(t, 0) + 1
        norm2, dot = 0.0, 0.0
        for t, c in counts.items():
            idf, idf_w = self._terms[t]
            tf = 1.0 + math.log(c)
            norm2 += (tf * idf) ** 2
            dot += tf * idf_w
        return self.intercept + (dot / math.sqrt(norm2) if norm2 > 0 else 0.0)


def _matrix(docs: list[list[str]], vocab: dict[str, int], idf: np.ndarray):
    import scipy.sparse as sp

    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for r, doc in enumerate(docs):
        counts: dict[int, int] = {}
        for t in doc:
            i = vocab.get(t)
            if i is not None:
                counts[i] = counts.get(i, 0) + 1
        if not counts:
            continue
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        v = (1.0 + np.log(np.fromiter(counts.values(), dtype=float, count=len(counts)))) * idf[idx]
        v /= np.linalg.norm(v)
        rows += [r] * len(idx)
        cols += idx.tolist()
        vals += v.tolist()
    return sp.csr_matrix((vals, (rows, cols)), shape=(len(docs), len(vocab)))


MODELS = ("tfidf", "minilm")  # what `hadis router train --model` builds


class LearnedRouter:
    """Router interface over a learned model (TfidfRidge or EmbeddingRidge); higher score
    = send to heavy first."""

    name = "learned"

    def __init__(
        self,
        model: TfidfRidge | EmbeddingRidge,
        cuts: np.ndarray,
        trained: dict[str, Any] | None = None,
    ) -> None:
        if len(cuts) < 2:
            raise HadisError("a learned router needs at least 2 cut scores")
        self.model = model
        self.expensive = model.expensive
        self._sorted = np.sort(np.asarray(cuts, dtype=float))
        self.trained = trained or {}

    def score(self, prompt_id: int | None, prompt: str | None = None) -> float:
        if prompt is None:
            raise HadisError("the learned router scores prompt text; got no prompt")
        return self.model.predict_one(prompt)

    def score_many(self, prompts: list[str]) -> np.ndarray:
        return self.model.predict(list(prompts))

    def threshold(self, r: float) -> float:
        return cut_above(self._sorted, r)

    def to_json(self) -> dict[str, Any]:
        m = self.model
        qs = np.quantile(self._sorted, np.linspace(0, 1, min(N_CUTS, len(self._sorted))))
        head = {"format": FORMAT, "version": VERSION, "model": m.kind}
        tail = {"cuts": [float(v) for v in qs], "trained": self.trained}
        if isinstance(m, EmbeddingRidge):
            return {**head, **m.to_json(), **tail}
        vocab = sorted(m.vocabulary, key=m.vocabulary.__getitem__)
        return {
            **head,
            "tokenizer": {"pattern": TOKEN.pattern, "lowercase": True, "ngrams": m.ngrams},
            "vocabulary": vocab,
            "idf": [round(float(v), 8) for v in m.idf],
            "weights": [float(v) for v in m.weights],
            "intercept": m.intercept,
            **tail,
        }

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> LearnedRouter:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise HadisError(f"router file {path} does not exist") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise HadisError(f"router file {path} is not readable JSON: {e}") from None
        return cls.from_json(data, str(path))

    @classmethod
    def from_json(cls, data: Any, where: str = "router file") -> LearnedRouter:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise HadisError(f"{where} is not a hadis router (format {FORMAT!r})")
        kinds = (TfidfRidge.kind, EmbeddingRidge.kind)
        if data.get("version") != VERSION or data.get("model") not in kinds:
            raise HadisError(
                f"{where}: router version {data.get('version')!r} / model "
                f"{data.get('model')!r} is not supported (this hadis reads version {VERSION}, "
                f"{' or '.join(kinds)})"
            )
        try:
            cuts = np.asarray(data["cuts"], dtype=float)
        except (KeyError, TypeError, ValueError) as e:
            raise HadisError(f"{where}: malformed router file ({e})") from None
        if data["model"] == EmbeddingRidge.kind:
            if not np.isfinite(cuts).all():
                raise HadisError(f"{where}: non-finite numbers in the router")
            return cls(EmbeddingRidge.from_json(data, where), cuts, data.get("trained") or {})
        try:
            vocab = [str(t) for t in data["vocabulary"]]
            idf = np.asarray(data["idf"], dtype=float)
            weights = np.asarray(data["weights"], dtype=float)
            ngrams = int(data["tokenizer"]["ngrams"])
            intercept = float(data["intercept"])
            cuts = np.asarray(data["cuts"], dtype=float)
        except (KeyError, TypeError, ValueError) as e:
            raise HadisError(f"{where}: malformed router file ({e})") from None
        if not (len(vocab) == len(idf) == len(weights)) or len(set(vocab)) != len(vocab):
            raise HadisError(f"{where}: vocabulary, idf and weights differ in length")
        finite = np.isfinite(idf).all() and np.isfinite(weights).all()
        if not (finite and np.isfinite(cuts).all() and math.isfinite(intercept)):
            raise HadisError(f"{where}: non-finite numbers in the router")
        model = TfidfRidge({t: i for i, t in enumerate(vocab)}, idf, weights, intercept, ngrams)
        return cls(model, cuts, data.get("trained") or {})


@register_router("learned", argument="PATH")
def _learned(path: str, seed: int) -> LearnedRouter:
    from hadis import bundled

    return LearnedRouter.load(bundled.resolve(path))
