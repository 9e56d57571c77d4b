"""REPAIR (arXiv 2410.02205, section "data refinement and augmentation"): noisy pairwise
preferences in, a transitive, complete and augmented set of pairs out, for training a judge.

1. Aggregate: each item's win-loss rate, (wins - losses) / comparisons, over the given pairs.
2. Order: sort by that rate, best first. Ties are broken by first appearance in the input, and
   reported, so the same input always gives the same order.
3. Refine: regenerate every pair from the order, so the labels are transitive by construction.
4. Augment: each pair in both presentation orders (commutativity), and each again under the
   negated question with the opposite answer (negation invariance).

Departure: items that appear in no comparison cannot be placed; they are returned in
``unplaced`` rather than guessed into the order.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class RepairedPair:
    first: Hashable  # shown as option A
    second: Hashable  # shown as option B
    answer: Literal["first", "second"]  # which option the question picks
    negated: bool  # asked "which is worse?"


@dataclass(frozen=True)
class Repaired:
    order: list  # best first
    rates: dict  # item -> win-loss rate
    ties: list[list]  # groups of items with equal rates, in the order they were placed
    unplaced: list  # items never compared
    pairs: list[RepairedPair]


def repair(items: Sequence[Hashable], comparisons: Iterable[tuple[Hashable, Hashable]], negate: bool = True) -> Repaired:
    """``comparisons`` are (winner, loser) judgements, possibly noisy, sparse and cyclic."""
    first_seen = {item: i for i, item in enumerate(items)}
    wins = dict.fromkeys(items, 0)
    losses = dict.fromkeys(items, 0)
    for winner, loser in comparisons:
        if winner not in first_seen or loser not in first_seen:
            raise ValueError(f"comparison ({winner!r}, {loser!r}) names an item not in items")
        wins[winner] += 1
        losses[loser] += 1
    compared = [item for item in items if wins[item] + losses[item]]
    rates = {item: (wins[item] - losses[item]) / (wins[item] + losses[item]) for item in compared}
    order = sorted(compared, key=lambda item: (-rates[item], first_seen[item]))
    ties = [group for rate in dict.fromkeys(rates[i] for i in order)
            if len(group := [i for i in order if rates[i] == rate]) > 1]
    pairs = []
    for position, better in enumerate(order):
        for worse in order[position + 1 :]:
            pairs += [RepairedPair(better, worse, "first", False), RepairedPair(worse, better, "second", False)]
            if negate:
                pairs += [RepairedPair(better, worse, "second", True), RepairedPair(worse, better, "first", True)]
    return Repaired(order, rates, ties, [i for i in items if i not in rates], pairs)
