"""Logical consistency of the model's pairwise judgements (arXiv 2410.02205) and ranking by them.

The comparator asks the model which of two options answers an instruction and reads P(A) from
the logits of the first answer token, summed over the tokenizer's variants of the letter ("A",
" A"), normalised against B. Raw, that probability carries the model's position bias;
calibrated, it is averaged over both presentation orders, P(a > b) = (P_A(a, b) + P_B(b, a)) / 2,
which makes the verdict order-free by construction. The negated comparator asks for the *worse*
option.

Metrics over a set of items, from judgements of every ordered pair:

- commutativity s_comm: share of pairs whose verdict survives swapping the order;
- negation invariance s_neg: share of ordered pairs where the negated question picks the other;
- transitivity s_tran(K): share of K-item subsets whose induced tournament is acyclic (all of
  them when there are at most ``max_subsets``, else that many sampled with a fixed seed).

For the raw comparator the tournament takes each pair in the order the items are listed (i < j);
the calibrated one is order-free already. Ranking is PairS-style merge sort with the calibrated
comparator, O(n log n) comparisons; REPAIR's aggregation lives in ``learners.repair``.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from agent.errors import InvalidInput
from agent.llm.protocol import Backend
from graphs.verify import prompts
from learners.metrics import kendall_tau

Matrix = list[list[float]]  # m[i][j]: the judgement with item i shown first and item j second


class Comparator:
    """P(the option shown first is picked), cached per (instruction, first, second)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.calls = 0  # forward passes actually run (cache misses)
        self._cache: dict[tuple[str, str, str], float] = {}
        self._letters = {letter: token_variants(backend, letter) for letter in "AB"}

    def first(self, instruction: str, a: str, b: str) -> float:
        key = (instruction, a, b)
        if key not in self._cache:
            prompt = self.backend.render(prompts.compare(instruction, a, b)) + prompts.COMPARE_PREFILL
            self._cache[key] = first_of_two(self.backend, prompt, self._letters["A"], self._letters["B"])
            self.calls += 1
        return self._cache[key]

    def calibrated(self, instruction: str, a: str, b: str) -> float:
        """P(a is picked over b), averaged over both presentation orders."""
        return (self.first(instruction, a, b) + 1 - self.first(instruction, b, a)) / 2


def token_variants(backend: Backend, word: str) -> list[int]:
    """Token ids that spell ``word`` alone, with or without a leading space."""
    ids = {ids[0] for text in (word, " " + word) if len(ids := backend.encode(text)) == 1}
    if not ids:
        raise InvalidInput(f"the model's tokenizer has no single token for {word!r}; the judge needs one")
    return sorted(ids)


def first_of_two(backend: Backend, prompt: str, first: list[int], second: list[int]) -> float:
    """P(the next token is one of ``first``), normalised against ``second``; 0.5 if neither has mass."""
    import torch

    logprobs = torch.log_softmax(backend.logits(prompt)[-1], dim=-1)
    p1, p2 = (torch.logsumexp(logprobs[ids], dim=0).exp().item() for ids in (first, second))
    return p1 / (p1 + p2) if p1 + p2 > 0 else 0.5


# -- judgements of a whole set ----------------------------------------------------------------


@dataclass
class SetJudgements:
    """Raw P(first picked) for every ordered pair, under the instruction and its negation."""

    items: list[str]
    positive: Matrix
    negative: Matrix | None = None

    @classmethod
    def collect(cls, comparator: Comparator, instruction: str, items: Sequence[str],
                negated_instruction: str | None = None, on_pair: Callable[[], None] | None = None) -> SetJudgements:
        n = len(items)

        def matrix(text: str) -> Matrix:
            m = [[0.5] * n for _ in range(n)]
            for i, j in itertools.permutations(range(n), 2):
                m[i][j] = comparator.first(text, items[i], items[j])
                if on_pair is not None:
                    on_pair()
            return m

        return cls(list(items), matrix(instruction), matrix(negated_instruction) if negated_instruction else None)

    def calibrated(self, i: int, j: int, negated: bool = False) -> float:
        """P(item i is picked over item j), averaged over both orders (under the negation: picked as worse)."""
        m = self.negative if negated else self.positive
        return (m[i][j] + 1 - m[j][i]) / 2

    def prefers(self, calibrated: bool, negated: bool = False) -> list[list[bool]]:
        """p[i][j]: i is picked over j with i shown first (for the negation: picked as worse)."""
        m, n = (self.negative if negated else self.positive), len(self.items)
        if calibrated:
            return [[i != j and self.calibrated(i, j, negated) > 0.5 for j in range(n)] for i in range(n)]
        return [[i != j and m[i][j] > 0.5 for j in range(n)] for i in range(n)]

    def figures(self, calibrated: bool, k: int = 3, max_subsets: int = 2000, true_order: Sequence[int] | None = None) -> dict:
        better = self.prefers(calibrated)
        out = {
            "s_comm": commutativity(better),
            "s_neg": negation_invariance(better, self.prefers(calibrated, negated=True)) if self.negative else None,
            f"s_tran_{k}": transitivity(better, k, max_subsets),
        }
        if true_order is not None:
            out["agreement"] = agreement(better, true_order)
        return out


# -- the metrics, on boolean preference matrices ----------------------------------------------


def commutativity(prefers: list[list[bool]]) -> float:
    """Share of pairs where exactly one of the two presentations is picked, i.e. the verdict is order-free."""
    pairs = list(itertools.combinations(range(len(prefers)), 2))
    return _share(prefers[i][j] != prefers[j][i] for i, j in pairs) if pairs else 1.0


def negation_invariance(prefers: list[list[bool]], prefers_worse: list[list[bool]]) -> float:
    """Share of ordered pairs where "which is worse?" picks the other option than "which is better?"."""
    pairs = list(itertools.permutations(range(len(prefers)), 2))
    return _share(prefers_worse[i][j] != prefers[i][j] for i, j in pairs) if pairs else 1.0


def transitivity(prefers: list[list[bool]], k: int = 3, max_subsets: int = 2000, seed: int = 0) -> float:
    """s_tran(k): share of k-item subsets whose tournament (pair i < j decided by prefers[i][j]) is acyclic."""
    n = len(prefers)
    if k < 3:
        raise InvalidInput("transitivity needs subsets of at least 3 items")
    if n < k:
        return 1.0
    if math.comb(n, k) <= max_subsets:
        subsets = itertools.combinations(range(n), k)
    else:
        rng = random.Random(seed)
        subsets = (sorted(rng.sample(range(n), k)) for _ in range(max_subsets))
    return _share(_acyclic(prefers, s) for s in subsets)


def _acyclic(prefers: list[list[bool]], subset: Sequence[int]) -> bool:
    # A tournament is acyclic exactly when its out-degrees are all different (0, 1, ..., k-1).
    wins = [sum(prefers[a][b] if a < b else not prefers[b][a] for b in subset if b != a) for a in subset]
    return len(set(wins)) == len(wins)


def agreement(prefers: list[list[bool]], true_order: Sequence[int]) -> float:
    """Share of ordered pairs judged as the true order (best first) has them."""
    rank = {item: r for r, item in enumerate(true_order)}
    pairs = list(itertools.permutations(range(len(prefers)), 2))
    return _share(prefers[i][j] == (rank[i] < rank[j]) for i, j in pairs) if pairs else 1.0


def _share(flags) -> float:
    flags = list(flags)
    return round(sum(flags) / len(flags), 4)


# -- ranking ----------------------------------------------------------------------------------


def merge_sort(n: int, better: Callable[[int, int], bool]) -> tuple[list[int], int]:
    """Indices 0..n-1 best first, by merge sort on ``better(i, j)``; also the comparisons made."""
    count = 0

    def sort(part: list[int]) -> list[int]:
        nonlocal count
        if len(part) <= 1:
            return part
        left, right = sort(part[: len(part) // 2]), sort(part[len(part) // 2 :])
        merged = []
        while left and right:
            count += 1
            merged.append(left.pop(0) if better(left[0], right[0]) else right.pop(0))
        return merged + left + right

    return sort(list(range(n))), count


class Ranking(BaseModel):
    """What `rank` returns: the order, how it was reached, and how consistent the judge was."""

    model_config = ConfigDict(frozen=True)

    instruction: str
    items: list[str]
    order: list[int]  # indices into items, best first
    ranked: list[str]
    comparisons: int  # comparator calls merge sort made
    confidence: list[float]  # calibrated P(item beats the next one down), for each adjacent pair
    raw: dict  # s_comm, s_neg, s_tran_k of the raw comparator over all pairs
    calibrated: dict  # the same for the calibrated comparator
    kendall_tau: float | None = None  # against true_order, when one was given


def check_items(items: Sequence[str]) -> list[str]:
    cleaned = [item.strip() for item in items]
    if len(cleaned) < 2:
        raise InvalidInput("ranking needs at least two items")
    if any(not item for item in cleaned):
        raise InvalidInput("an item is empty")
    if len(set(cleaned)) < len(cleaned):
        raise InvalidInput("two items are the same; each item must differ")
    return cleaned


def check_k(k: int, items: int) -> None:
    """Before any comparison: s_tran(k) needs subsets of 3 or more, and no more than there are items."""
    if k < 3:
        raise InvalidInput("transitivity needs subsets of at least 3 items")
    if k > max(items, 3):
        raise InvalidInput(f"transitivity subsets of {k} need at least {k} items; there are {items}")


def rank(backend: Backend, instruction: str, items: Sequence[str], *, negated_instruction: str | None = None,
         k: int = 3, true_order: Sequence[int] | None = None, comparator: Comparator | None = None,
         on_pair: Callable[[], None] | None = None) -> Ranking:
    """Rank ``items`` for ``instruction`` by merge sort on the calibrated comparator, and measure
    the judge's consistency over all pairs (the negation defaults to ``prompts.negate``)."""
    if not instruction.strip():
        raise InvalidInput("the instruction is empty")
    items = check_items(items)
    check_k(k, len(items))
    comparator = comparator or Comparator(backend)
    negated = negated_instruction or prompts.negate(instruction)
    judged = SetJudgements.collect(comparator, instruction, items, negated, on_pair)
    order, comparisons = merge_sort(len(items), lambda i, j: judged.calibrated(i, j) > 0.5)
    return Ranking(
        instruction=instruction, items=items, order=order, ranked=[items[i] for i in order],
        comparisons=comparisons, confidence=[round(judged.calibrated(a, b), 4) for a, b in zip(order, order[1:])],
        raw=judged.figures(False, k, true_order=true_order),
        calibrated=judged.figures(True, k, true_order=true_order),
        kendall_tau=kendall_tau(positions(order), positions(true_order)) if true_order is not None else None,
    )


def positions(order: Sequence[int]) -> list[int]:
    """Rank position of each item index, from an order given best first."""
    where = [0] * len(order)
    for position, item in enumerate(order):
        where[item] = position
    return where


# -- checking whole sets (reverie judge consistency, examples/eval_consistency.py) -------------


class ConsistencySet(BaseModel):
    """One line of a consistency file: items to compare under an instruction (and its negation)."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    instruction: str
    negated_instruction: str | None = None  # default: prompts.negate(instruction)
    items: list[str]
    true_order: list[int] | None = None  # indices into items, best first


def read_sets(lines: Sequence[str], source: str = "input") -> list[ConsistencySet]:
    """Parse JSONL; the first bad line is an error that names it."""
    import json

    from pydantic import ValidationError

    sets = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            found = ConsistencySet.model_validate(json.loads(line))
            check_items(found.items)
            if not found.instruction.strip():
                raise InvalidInput("the instruction is empty")
            if found.true_order is not None and sorted(found.true_order) != list(range(len(found.items))):
                raise InvalidInput("true_order must list every item index once")
        except (ValueError, ValidationError, InvalidInput) as exc:
            reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc).splitlines()[0]
            raise InvalidInput(f"{source} line {number}: {reason}") from None
        sets.append(found.model_copy(update={"id": found.id or f"line-{number}"}))
    if not sets:
        raise InvalidInput(f"{source} holds no sets")
    return sets


def check_sets(backend: Backend, sets: Sequence[ConsistencySet], k: int = 3,
               on_pair: Callable[[], None] | None = None) -> dict:
    """s_comm, s_neg, s_tran(k) (and agreement with true_order, when given) of the raw and the
    calibrated comparator, per set and averaged over the sets."""
    check_k(k, max((len(s.items) for s in sets), default=0))
    comparator, per_set = Comparator(backend), []
    for one in sets:
        negated = one.negated_instruction or prompts.negate(one.instruction)
        judged = SetJudgements.collect(comparator, one.instruction, one.items, negated, on_pair)
        per_set.append({
            "id": one.id, "items": len(one.items),
            "raw": judged.figures(False, k, true_order=one.true_order),
            "calibrated": judged.figures(True, k, true_order=one.true_order),
        })
    overall = {
        view: {key: _mean([s[view][key] for s in per_set]) for key in per_set[0][view]}
        for view in ("raw", "calibrated")
    }
    return {"k": k, "sets": per_set, "overall": overall, "comparator_calls": comparator.calls, "prompts": prompts.VERSION}


def pairs_needed(sets: Sequence[ConsistencySet | Sequence[str]]) -> int:
    """Comparator calls for judging sets (or bare item lists): every ordered pair, under both instructions."""
    return sum(2 * len(n) * (len(n) - 1) for n in (s.items if isinstance(s, ConsistencySet) else s for s in sets))


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(sum(present) / len(present), 4) if present else None
