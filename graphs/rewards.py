"""Rewards a policy learner can be given: callables (queries, responses) -> scores.

A learner never builds its own reward: the nightly refine step (and a benchmark) picks these by
name from ``[cory] reward`` and passes them in.
    exact      1 when the last number of the response is the expected answer (CORY's GSM8K rule)
    rm:MODEL   a sequence-classification reward model's score of query + response
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


def from_spec(spec: str, answers: Mapping[str, float], device: str = "cpu") -> Reward:
    """The reward ``[refine] reward`` names: ``exact`` (over the prompt set's answers) or ``rm:MODEL``."""
    if spec == "exact":
        if not answers:
            raise InvalidInput("the exact reward needs a prompt set with answers: set [refine] prompts")
        return exact_answer(answers)
    if spec.startswith("rm:") and spec[3:]:
        return reward_model(spec[3:], device)
    raise InvalidInput(f"unknown reward {spec!r}; use exact or rm:MODEL")
