"""Answer metrics shared by benchmarks and evaluation.

QA-F1 and exact match follow the SQuAD v1.1 evaluation script (Rajpurkar et al., 2016):
lowercase, drop punctuation and the articles a/an/the, split on whitespace. "Contains" asks
whether a normalised gold answer appears inside the normalised prediction, which suits a chat
model that answers in full sentences (F1 then mostly measures brevity).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def contains(prediction: str, golds: Sequence[str]) -> bool:
    """Whether any normalised gold answer occurs, on word boundaries, in the normalised prediction."""
    padded = f" {normalize_answer(prediction)} "
    return any(f" {normalize_answer(g)} " in padded for g in golds if normalize_answer(g))


def qa_f1(prediction: str, golds: Sequence[str]) -> float:
    """Token-level F1 against the best-matching gold answer."""
    return max((_f1(normalize_answer(prediction).split(), normalize_answer(g).split()) for g in golds), default=0.0)


def _f1(predicted: list[str], gold: list[str]) -> float:
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)
