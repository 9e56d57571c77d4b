"""The committee that cleans feedback (learners/sac.py): members that each judge an item's
answers on their own scale, and the cache that makes a re-run cost nothing.

A member returns, for the answers of one item, a score each (its own scale: only the sign of
score(chosen) - score(rejected) is ever used) and, where it can, a good/bad judgement of each
answer on its own (for thumbs, and for "both answers bad"). It returns None where it cannot
judge (CodeJudge on answers without code, a reward model asked for good/bad).

Members:
- ``ModelJudge(backend, criterion)``: the agent's own model under one criterion (helpful,
  correct, harmless): the calibrated pairwise comparator of graphs/verify (both orders averaged)
  for the scores, P(Yes) from the first answer token for good/bad.
- ``CodeJudgeMember(backend)``: CodeJudge binary on answers that contain code.
- ``RewardModel(spec)``: any Hugging Face sequence-classification reward model (id or folder).
- ``CallableMember(name, score, good=None)``: any Python function.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from agent.errors import InvalidInput
from agent.llm.protocol import Backend, Message
from graphs.verify import prompts
from graphs.verify.choices import find_code
from graphs.verify.codejudge import CodeTask, judge_code
from graphs.verify.consistency import Comparator, first_of_two, token_variants
from learners.sac import Votes


@dataclass(frozen=True)
class Judged:
    scores: list[float | None]  # one per answer, on the member's own scale
    good: list[bool | None]  # one per answer: judged good on its own? None: cannot say

    def as_dict(self) -> dict:
        return {"scores": self.scores, "good": self.good}


class Member(Protocol):
    key: str  # who it is, for the cache and the record: kind, model, criterion

    def judge(self, prompt: list[Message], answers: list[str]) -> Judged: ...


class ModelJudge:
    def __init__(self, backend: Backend, criterion: str) -> None:
        if criterion not in prompts.CRITERIA:
            raise InvalidInput(f"unknown criterion {criterion!r}; use one of {', '.join(prompts.CRITERIA)}")
        self.backend, self.criterion = backend, criterion
        # The model line, not its nightly version: a night's small change to the weights does not
        # make every earlier vote stale (re-judging all feedback each night would grow without end).
        self.key = f"judge:{criterion}:{backend.name}:p{prompts.VERSION}"
        self._comparator = Comparator(backend)
        self._yes_no = (token_variants(backend, "Yes"), token_variants(backend, "No"))

    def judge(self, prompt: list[Message], answers: list[str]) -> Judged:
        scores: list[float | None] = [None] * len(answers)
        if len(answers) == 2:
            p = self._comparator.calibrated(prompts.judge_pair_instruction(prompt, self.criterion), *answers)
            scores = [p, 1 - p]
        good = []
        for answer in answers:
            text = self.backend.render(prompts.judge_one(prompt, answer, self.criterion)) + prompts.GOOD_PREFILL
            good.append(first_of_two(self.backend, text, *self._yes_no) > 0.5)
        return Judged(scores, good)


class CodeJudgeMember:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.key = f"codejudge:binary:{backend.name}:p{prompts.VERSION}"  # the model line, as ModelJudge

    def judge(self, prompt: list[Message], answers: list[str]) -> Judged:
        found = [find_code(answer) for answer in answers]
        if all(f is None for f in found):
            return Judged([None] * len(answers), [None] * len(answers))
        scores, good = [], []
        for code in found:
            if code is None:  # beside an answer with code, one without does not do what was asked
                scores.append(0.0)
                good.append(None)
                continue
            verdict = judge_code(self.backend, CodeTask(prompt[-1]["content"], *code), "binary")
            scores.append(verdict.score)
            good.append(None if verdict.result == "invalid" else verdict.result == "yes")
        return Judged(scores, good)


class RewardModel:
    """A sequence-classification reward model: the score is its first logit on the conversation."""

    def __init__(self, spec: str, device: str = "cpu") -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(spec)
            self.model = AutoModelForSequenceClassification.from_pretrained(spec).to(device).eval()
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot load reward model {spec!r}: {str(exc).splitlines()[0]}") from exc
        self.key, self.device, self._torch = f"rm:{spec}", device, torch

    def judge(self, prompt: list[Message], answers: list[str]) -> Judged:
        scores = []
        for answer in answers:
            conversation = [*prompt, {"role": "assistant", "content": answer}]
            if self.tokenizer.chat_template:
                text = self.tokenizer.apply_chat_template(conversation, tokenize=False)
            else:
                text = prompts.conversation_text(conversation)
            ids = self.tokenizer(text, return_tensors="pt", truncation=True).to(self.device)
            with self._torch.inference_mode():
                scores.append(float(self.model(**ids).logits[0, 0]))
        return Judged(scores, [None] * len(answers))  # a reward has no absolute "good"


@dataclass
class CallableMember:
    name: str
    score: Callable[[list[Message], str], float | None]
    good: Callable[[list[Message], str], bool | None] | None = None

    @property
    def key(self) -> str:
        return f"callable:{self.name}"

    def judge(self, prompt: list[Message], answers: list[str]) -> Judged:
        return Judged([self.score(prompt, a) for a in answers],
                      [self.good(prompt, a) if self.good else None for a in answers])


# -- items and votes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One piece of feedback to clean: a preference (answers = [chosen, rejected]) or a thumb
    on one answer (answers = [answer], label "up" or "down")."""

    feedback_id: int
    kind: str  # "preference" or "thumb"
    prompt: list[Message]
    answers: list[str]
    label: str  # "chosen-first" for a preference; "up" / "down" for a thumb
    source: str = "user"

    def digest(self) -> str:
        """What a member's judgement depends on (never the label: a flip must not re-judge)."""
        return hashlib.sha256(json.dumps([self.prompt, self.answers], sort_keys=True).encode()).hexdigest()


class Cache(Protocol):
    def get(self, member: str, item: str) -> dict | None: ...

    def put(self, member: str, item: str, judged: dict) -> None: ...


@dataclass
class Committee:
    members: Sequence[Member]
    cache: Cache | None = None
    judged_now: int = field(default=0)  # member judgements actually computed (not cached)

    @property
    def keys(self) -> list[str]:
        return [m.key for m in self.members]

    def vote(self, item: Item) -> tuple[Votes, dict[str, dict]]:
        """The committee's votes on ``item`` and each member's judgement, by member key."""
        agree, both_bad, detail = [], [], {}
        for member in self.members:
            judged = self._judged(member, item)
            detail[member.key] = judged.as_dict()
            agree.append(_agrees(item, judged))
            if item.kind == "preference" and None not in judged.good:
                both_bad.append(not any(judged.good))
            else:
                both_bad.append(None)
        return Votes(agree, both_bad), detail

    def _judged(self, member: Member, item: Item) -> Judged:
        digest = item.digest()
        cached = self.cache.get(member.key, digest) if self.cache else None
        if cached is not None:
            return Judged(cached["scores"], cached["good"])
        judged = member.judge(item.prompt, item.answers)
        self.judged_now += 1
        if self.cache:
            self.cache.put(member.key, digest, judged.as_dict())
        return judged


def _agrees(item: Item, judged: Judged) -> bool | None:
    if item.kind == "preference":
        chosen, rejected = judged.scores
        return None if chosen is None or rejected is None else chosen > rejected  # a tie is no agreement
    good = judged.good[0]
    return None if good is None else good == (item.label == "up")
