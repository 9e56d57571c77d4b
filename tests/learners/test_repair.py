"""REPAIR: win-loss aggregation, deterministic ties, refined and augmented pairs."""

import itertools

import pytest

from learners.repair import RepairedPair, repair


def test_the_papers_example_and_a_cycle():
    # A beats B, C and D but loses to E and F: (3 - 2) / 5 = 0.2. B and C beat each other once.
    comparisons = [("A", "B"), ("A", "C"), ("A", "D"), ("E", "A"), ("F", "A"), ("B", "C"), ("C", "B")]
    r = repair("ABCDEFG", comparisons)
    assert r.rates["A"] == 0.2
    assert r.order == ["E", "F", "A", "B", "C", "D"]  # E and F tie at 1.0: first appearance decides
    assert r.ties == [["E", "F"], ["B", "C"]] and r.unplaced == ["G"]


def test_pairs_are_complete_transitive_and_augmented():
    r = repair([1, 2, 3], [(3, 1), (1, 2), (2, 3)])  # a perfect cycle: all rates 0, input order kept
    assert r.order == [1, 2, 3]
    plain = [p for p in r.pairs if not p.negated]
    assert len(plain) == 2 * 3 and len(r.pairs) == 4 * 3
    assert RepairedPair(1, 3, "first", False) in r.pairs and RepairedPair(3, 1, "second", False) in r.pairs
    assert RepairedPair(1, 3, "second", True) in r.pairs and RepairedPair(3, 1, "first", True) in r.pairs
    # Transitive by construction: the winners never form a cycle.
    beats = {(p.first, p.second) if p.answer == "first" else (p.second, p.first) for p in plain}
    assert not any({(a, b), (b, c), (c, a)} <= beats for a, b, c in itertools.permutations([1, 2, 3]))
    assert len(repair([1, 2], [(1, 2)], negate=False).pairs) == 2


def test_unknown_items_are_refused():
    with pytest.raises(ValueError, match="not in items"):
        repair(["a"], [("a", "z")])
