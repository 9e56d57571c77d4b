"""Consistency metrics on planted tournaments (exact values), calibration against a fake
comparator with a strong position bias, merge-sort ranking, and reading consistency files."""

import math
import re

import pytest
import torch

from agent.errors import InvalidInput
from graphs.verify.consistency import (
    Comparator,
    SetJudgements,
    check_sets,
    commutativity,
    merge_sort,
    negation_invariance,
    rank,
    read_sets,
    transitivity,
)


def tournament(n, beats):
    """prefers[i][j] for i < j from a set of (winner, loser) pairs; j > i entries mirror it."""
    m = [[False] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            m[i][j] = (i, j) in beats
            m[j][i] = not m[i][j]
    return m


def test_transitivity_counts_cyclic_subsets_exactly():
    # 0 > 1 > 2 > 0 is a cycle; 3 loses to everyone.
    cyclic = tournament(4, {(0, 1), (1, 2), (0, 3), (1, 3), (2, 3)} | set())
    cyclic[0][2], cyclic[2][0] = False, True  # 2 beats 0
    assert transitivity(cyclic, k=3) == 0.75  # of the 4 triples only {0, 1, 2} is cyclic
    assert transitivity(cyclic, k=4) == 0.0
    assert transitivity(tournament(5, {(i, j) for i in range(5) for j in range(i + 1, 5)}), k=3) == 1.0
    # Sampled when there are more subsets than max_subsets: still exact here, every subset is acyclic.
    assert transitivity(tournament(12, {(i, j) for i in range(12) for j in range(i + 1, 12)}), 3, max_subsets=50) == 1.0
    with pytest.raises(InvalidInput):
        transitivity(cyclic, k=2)


def test_commutativity_and_negation_on_planted_matrices():
    always_first = [[i != j for j in range(3)] for i in range(3)]  # picks whatever is shown first
    assert commutativity(always_first) == 0.0
    honest = tournament(3, {(0, 1), (0, 2), (1, 2)})
    assert commutativity(honest) == 1.0
    assert negation_invariance(honest, [[i != j and not honest[i][j] for j in range(3)] for i in range(3)]) == 1.0
    assert negation_invariance(always_first, always_first) == 0.0
    half = [row[:] for row in honest]
    half[0][1] = half[1][0] = True  # pair (0, 1) flips with the order
    assert commutativity(half) == round(2 / 3, 4)


class BiasedModel:
    """A fake comparator model: items carry a hidden value, and the letter A gets a large bonus
    whatever it labels (strong position bias). Token ids: 0 'A', 1 ' A', 2 'B', 3 ' B', 4 other."""

    def __init__(self, values, bias=4.0, scale=1.0):
        self.values, self.bias, self.scale, self.prompts = values, bias, scale, []  # bias > any gap: A always wins raw

    def encode(self, text):
        return {"A": [0], " A": [1], "B": [2], " B": [3]}.get(text, [4, 4])

    def render(self, messages, add_generation_prompt=True):
        return messages[-1]["content"]

    def logits(self, prompt, continuation=""):
        self.prompts.append(prompt)
        a, b = re.search(r"Option A: (.*)\nOption B: (.*)\n", prompt).groups()
        gap = self.values[a] - self.values[b]
        if "smaller" in prompt or "worse" in prompt:  # the negated question
            gap = -gap
        row = torch.full((5,), -10.0)
        row[1], row[3] = self.bias + self.scale * gap, 0.0  # logit of " A" minus logit of " B": bias + gap
        return row[None, :]


def test_calibration_removes_a_strong_position_bias():
    values = {"tiny": 0.0, "small": 1.0, "big": 2.0, "huge": 3.0}
    items = ["small", "huge", "tiny", "big"]
    judged = SetJudgements.collect(Comparator(BiasedModel(values)), "Which is larger?", items, "Which is smaller?")
    raw, cal = judged.figures(calibrated=False), judged.figures(calibrated=True)
    assert raw["s_comm"] == 0.0 and raw["s_neg"] == 0.0  # A always wins, asked either way
    assert cal == {"s_comm": 1.0, "s_neg": 1.0, "s_tran_3": 1.0}
    # Calibrated verdicts do not depend on the presentation order.
    flip = SetJudgements.collect(Comparator(BiasedModel(values)), "Which is larger?", items[::-1], "Which is smaller?")
    assert cal == flip.figures(calibrated=True)


def test_rank_by_merge_sort_with_the_calibrated_comparator():
    values = {f"item {i}": float(i) for i in range(7)}
    items = ["item 3", "item 0", "item 6", "item 2", "item 5", "item 1", "item 4"]
    truth = sorted(range(7), key=lambda i: -values[items[i]])
    model = BiasedModel(values)
    ranking = rank(model, "Which is larger?", items, negated_instruction="Which is smaller?", true_order=truth)
    assert ranking.ranked == [f"item {i}" for i in range(6, -1, -1)]
    assert ranking.kendall_tau == 1.0 and ranking.calibrated["agreement"] == 1.0
    assert ranking.comparisons <= 7 * math.ceil(math.log2(7))
    assert all(p > 0.5 for p in ranking.confidence)
    assert len(model.prompts) == 2 * 7 * 6  # every ordered pair, both instructions, each asked once (cached)


def test_merge_sort_counts_its_comparisons():
    order, count = merge_sort(8, lambda i, j: i > j)
    assert order == list(range(7, -1, -1)) and count <= 8 * 3


def test_letter_variants_come_from_the_real_tokenizer(tiny_backend):
    comparator = Comparator(tiny_backend)
    assert len(comparator._letters["A"]) == 2 and set(comparator._letters["A"]).isdisjoint(comparator._letters["B"])
    p = comparator.first("Which is larger?", "2", "3")
    assert 0.0 <= p <= 1.0 and comparator.calls == 1
    assert comparator.calibrated("Which is larger?", "2", "3") == pytest.approx(1 - comparator.calibrated("Which is larger?", "3", "2"))


def test_consistency_files_are_read_with_line_numbers(shared_data):
    sets = read_sets((shared_data / "consistency" / "sets_dev.jsonl").read_text().splitlines(), "sets_dev.jsonl")
    assert len(sets) == 4 and all(s.true_order and s.negated_instruction for s in sets)
    good = '{"instruction": "Which is larger?", "items": ["1", "2"]}'
    for bad, reason in [
        ("{not json", "line 2: "),
        ('{"items": ["1", "2"]}', "line 2: Field required"),
        ('{"instruction": "Which?", "items": ["1"]}', "line 2: ranking needs at least two items"),
        ('{"instruction": "Which?", "items": ["1", "2"], "true_order": [0, 0]}', "line 2: true_order"),
    ]:
        with pytest.raises(InvalidInput, match=re.escape(f"f.jsonl {reason}")):
            read_sets([good, bad], "f.jsonl")
    with pytest.raises(InvalidInput, match="no sets"):
        read_sets(["", "  "], "f.jsonl")


def test_check_sets_reports_each_set_and_the_mean():
    values = {"1": 1.0, "2": 2.0, "3": 3.0}
    sets = read_sets(['{"id": "n", "instruction": "Which is larger?", "negated_instruction": "Which is smaller?", '
                      '"items": ["2", "3", "1"], "true_order": [1, 0, 2]}'])
    report = check_sets(BiasedModel(values), sets)
    assert report["sets"][0]["calibrated"] == {"s_comm": 1.0, "s_neg": 1.0, "s_tran_3": 1.0, "agreement": 1.0}
    assert report["overall"]["raw"]["s_comm"] == 0.0 and report["comparator_calls"] == 12
