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


# -- correlation, as the CodeJudge and consistency papers report it (scipy's tau-b and rho) --


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b, which corrects for ties (binary labels are all ties); None when undefined."""
    if len(x) != len(y):
        raise ValueError("kendall_tau needs two sequences of equal length")
    concordant = discordant = ties_x = ties_y = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denominator = ((concordant + discordant + ties_x) * (concordant + discordant + ties_y)) ** 0.5
    return round((concordant - discordant) / denominator, 4) if denominator else None


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rho: Pearson correlation of the average ranks; None when either side is constant."""
    if len(x) != len(y):
        raise ValueError("spearman needs two sequences of equal length")
    rx, ry = _average_ranks(x), _average_ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    var = (sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)) ** 0.5
    return round(cov / var, 4) if var else None


def _average_ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2 + 1
        start = end + 1
    return ranks
