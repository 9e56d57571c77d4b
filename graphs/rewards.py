"""Rewards a policy learner can be given: callables (queries, responses) -> scores.

A learner never builds its own reward: the nightly refine step (and a benchmark) picks these by
name from ``[cory] reward`` and passes them in.
    exact      1 when the last number of the response is the expected answer (CORY's GSM8K rule)
    rm:MODEL   a sequence-classification reward model's score of query + response
    comparator the calibrated pairwise comparator (graphs/verify, both orders averaged) on the
               base weights: P(the response is more helpful than the answer served now) - 0.5;
               only where the model's card trusts the comparator (agent.judges)
    codejudge  CodeJudge's graded score of the code in the response (1: nothing above
               Negligible), 0 for a response with no code or an invalid verdict; only where the
               card trusts CodeJudge
    callable   any Python function with the same signature
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from agent.errors import InvalidInput

Reward = Callable[[Sequence[str], Sequence[str]], Sequence[float]]
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def last_number(text: str) -> float | None:
    found = NUMBER.findall(text)
    return float(found[-1].replace(",", "")) if found else None


def exact_answer(answers: Mapping[str, float]) -> Reward:
    """1.0 when a response's last number equals its query's answer, else 0.0."""

    def reward(queries: Sequence[str], responses: Sequence[str]) -> list[float]:
        missing = [q for q in queries if q not in answers]
        if missing:
            raise InvalidInput(f"no expected answer for the query {missing[0][:60]!r}")
        return [float(last_number(r) == float(answers[q])) for q, r in zip(queries, responses)]

    return reward


def reward_model(spec: str, device: str = "cpu") -> Reward:
    """A sequence-classification reward model's first logit on the conversation (message, reply)."""
    from graphs.committee import RewardModel

    model = RewardModel(spec, device)

    def reward(queries: Sequence[str], responses: Sequence[str]) -> list[float]:
        return [model.judge([{"role": "user", "content": q}], [r]).scores[0] for q, r in zip(queries, responses)]

    return reward


def comparator(backend, served: Callable[[str], str], criterion: str = "helpful") -> Reward:
    """The comparator's preference for the response over what ``served(query)`` answers now."""
    from graphs.verify import prompts
    from graphs.verify.consistency import Comparator

    judge, current = Comparator(backend), {}

    def reward(queries: Sequence[str], responses: Sequence[str]) -> list[float]:
        scores = []
        for query, response in zip(queries, responses):
            if query not in current:
                current[query] = served(query)
            instruction = prompts.judge_pair_instruction([{"role": "user", "content": query}], criterion)
            scores.append(judge.calibrated(instruction, response, current[query]) - 0.5)
        return scores

    return reward


def codejudge(backend) -> Reward:
    """CodeJudge's graded score of the response's code as an answer to the query."""
    from graphs.verify.choices import find_code
    from graphs.verify.codejudge import CodeTask, judge_code

    def reward(queries: Sequence[str], responses: Sequence[str]) -> list[float]:
        scores = []
        for query, response in zip(queries, responses):
            found = find_code(response)
            verdict = judge_code(backend, CodeTask(query, found[0], found[1]), "graded") if found else None
            scores.append(verdict.score if verdict is not None and verdict.score is not None else 0.0)
        return scores

    return reward


def from_spec(spec: str, answers: Mapping[str, float], device: str = "cpu", judge=None,
              served: Callable[[str], str] | None = None) -> Reward:
    """The reward ``[refine] reward`` names: ``exact`` (over the prompt set's answers), ``rm:MODEL``,
    ``comparator`` (``judge``: a backend over the base weights; ``served``: today's answer) or
    ``codejudge`` (on ``judge``)."""
    if spec == "exact":
        if not answers:
            raise InvalidInput("the exact reward needs a prompt set with answers: set [refine] prompts")
        return exact_answer(answers)
    if spec.startswith("rm:") and spec[3:]:
        return reward_model(spec[3:], device)
    if spec == "comparator" and judge is not None and served is not None:
        return comparator(judge, served)
    if spec == "codejudge" and judge is not None:
        return codejudge(judge)
    raise InvalidInput(f"unknown reward {spec!r}; use exact, rm:MODEL, comparator or codejudge")
