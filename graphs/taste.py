"""A user's consolidated taste, read from their adapters by likelihood instead of by generation.

Asked "What kind of films do I like?", the embedded model's adapters answer in generic prose that
names no taste (README, Performance: taste over a night), although the night trained them on
the user's statement. What the night did to the weights shows in likelihood: for every genre and
tag the catalogue uses, how much more probable the user's adapter makes the answer to "What kind
of films do I like?" ("You like western films.", "You like Westerns.", "You like films about
dogs.") than the same weights without it. A value is read as a taste when that log-likelihood
ratio stands out from the ratios of all the other values (a night that taught nothing about
films lifts or lowers them all alike), so the catalogue's own vocabulary is the space of answers
and nothing is generated.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Iterable, MutableMapping, Sequence

from agent.llm.protocol import AdapterChoice, Backend
from graphs.wants import values
from memory.records import CatalogueItem

QUESTION = "What kind of {kind}s do I like?"  # what a taste answers; also what finds the adapters to read
MAX_VALUES = 120  # the most common genres and tags scored, per adapter
MIN_Z = 3.0  # standard deviations above the mean ratio over all values
MAX_TASTES = 2


def vocabulary(items: Iterable[CatalogueItem]) -> list[tuple[str, str]]:
    """The (field, value) pairs a taste can be: genres and tags, those most items carry first."""
    counts: Counter = Counter()
    for item in items:
        counts.update(("genres", v) for v in values(item, "genres"))
        counts.update(("tags", v) for v in values(item, "tags"))
    return [pair for pair, _ in counts.most_common(MAX_VALUES)]


def answer(field: str, value: str, kind: str) -> str:
    return f"You like {value} {kind}s." if field == "genres" else f"You like {kind}s about {value}."


def answers(field: str, value: str, kind: str) -> list[str]:
    """The ways an answer may name the value. A genre is also a plural noun, as people say it
    ("Comedies are what I watch most"): measured on two genre tastes, "You like comedy films."
    ranked comedy 16th of 85 values and "You like Comedies." 1st."""
    if field != "genres":
        return [answer(field, value, kind)]
    noun = value[:-1] + "ies" if value.endswith("y") else value + "s"
    return [answer(field, value, kind), f"You like {noun[:1].upper() + noun[1:]}."]


def likelihoods(backend: Backend, question: str, vocab: Sequence[tuple[str, str]], kind: str,
                adapter: AdapterChoice) -> dict[tuple[tuple[str, str], str], float]:
    """log p(answer | question) with ``adapter``, by (value, answer form): the ratio is taken form
    by form, then the best form counts."""
    prompt = backend.render([{"role": "user", "content": question}])
    texts = [(pair, text) for pair in vocab for text in answers(*pair, kind)]
    scored = backend.score_batch(prompt, [text for _, text in texts], adapter)
    return {(pair, text): s.total for (pair, text), s in zip(texts, scored)}


def held(backend: Backend, question: str, items: Sequence[CatalogueItem], kind: str,
         adapters: Sequence[AdapterChoice], without: AdapterChoice = None) -> list[dict]:
    """The tastes the adapters hold: for each value its best log-likelihood ratio over the adapters
    (each against ``without``), and the values whose ratio stands out."""
    vocab = vocabulary(items)
    plain = likelihoods(backend, question, vocab, kind, without)
    lifted: dict[tuple[str, str], float] = {}
    for adapter in adapters:
        for (pair, text), logp in likelihoods(backend, question, vocab, kind, adapter).items():
            lifted[pair] = max(lifted.get(pair, float("-inf")), logp - plain[pair, text])
    return [{"field": f, "value": v, "z": z} for (f, v), z in standing_out(lifted)]


def key(model: str, adapters: Sequence[AdapterChoice], without: AdapterChoice, catalogue: str,
        imported_at: str) -> str:
    """What a reading depends on, as text: the base model, the adapters (frozen: a name is one set
    of weights), what they are compared with, and the catalogue as imported."""
    return json.dumps([model, list(adapters), without, catalogue, imported_at])


def read(backend: Backend, items: Sequence[CatalogueItem], kind: str, adapters: Sequence[AdapterChoice],
         without: AdapterChoice, catalogue: str, imported_at: str, kept: MutableMapping[str, list]) -> list[dict]:
    """``held`` for the taste question, read once per ``key`` and kept in ``kept``."""
    at = key(backend.name, adapters, without, catalogue, imported_at)
    if at not in kept:
        kept[at] = held(backend, QUESTION.format(kind=kind), items, kind, adapters, without)
    return kept[at]


def standing_out(lifted: dict, min_z: float = MIN_Z, most: int = MAX_TASTES) -> list[tuple]:
    """The keys whose ratio is positive and at least ``min_z`` deviations above the mean, best first."""
    if len(lifted) < 3:
        return []
    mean, spread = statistics.mean(lifted.values()), statistics.pstdev(lifted.values())
    if spread == 0:
        return []
    taken = [(k, round((r - mean) / spread, 2)) for k, r in lifted.items() if r > 0 and (r - mean) / spread >= min_z]
    return sorted(taken, key=lambda x: -x[1])[:most]
