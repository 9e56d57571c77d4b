"""Evaluation of a model version after consolidation, and the gate that decides its promotion.

Everything here reads a model only through the backend protocol, with no experience in the
prompt: what the weights alone hold.
  - probes: "contains" and QA-F1 of short answers to questions set aside per experience
    (efficacy on the new experiences, retention on earlier ones);
  - near-miss probes: questions about something the experience does not say; the answer is
    *polluted* when it names one of the experience's own answers (an entity bleeding into the
    wrong slot, the commonest error of injected small models: selfparam_feasibility.md);
  - general ability: a fixed set of general questions, and perplexity on fixed chat-format text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from agent.llm.protocol import AdapterChoice, Backend, GenerationOptions
from learners.metrics import contains, qa_f1

# Asking for brevity keeps F1 meaningful: a full-paragraph answer caps F1 whatever it says.
PROBE_INSTRUCTION = "Answer briefly."
PROBE_TOKENS = 32

GENERAL_QUESTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("What is the capital of France?", ("Paris",)),
    ("How many legs does a spider have?", ("eight", "8")),
    ("Who wrote Romeo and Juliet?", ("Shakespeare",)),
    ("What is the largest planet in our solar system?", ("Jupiter",)),
    ("What gas do plants take in from the air for photosynthesis?", ("carbon dioxide", "CO2")),
    ("What is the freezing point of water in degrees Celsius?", ("0", "zero")),
    ("How many days are there in a week?", ("seven", "7")),
    ("What is the chemical symbol for gold?", ("Au",)),
    ("Which ocean lies between Europe and North America?", ("Atlantic",)),
    ("What is the capital of Japan?", ("Tokyo",)),
    ("Who painted the Mona Lisa?", ("Leonardo", "da Vinci")),
    ("What colour do you get by mixing blue and yellow?", ("green",)),
)

# Fixed chat-format text for perplexity: ordinary exchanges no consolidation should disturb.
CHAT_TEXT: tuple[tuple[str, str], ...] = (
    ("Can you suggest a quick breakfast?", "Oatmeal with fruit is quick, filling and easy to prepare."),
    ("How do I boil an egg?", "Put the egg in boiling water for about nine minutes, then cool it in cold water."),
    ("What is a good way to fall asleep faster?", "Keep a regular bedtime, dim the lights and avoid screens for an hour before bed."),
    ("Why is the sky blue?", "Air scatters blue sunlight more than red light, so the sky looks blue."),
    ("How can I save money on groceries?", "Plan your meals, make a shopping list and buy seasonal produce."),
    ("What does a thermometer measure?", "A thermometer measures temperature."),
    ("Give me a tip for learning a language.", "Practise a little every day and speak with native speakers when you can."),
    ("What is the boiling point of water at sea level?", "Water boils at 100 degrees Celsius at sea level."),
)


def ask(backend: Backend, system_prompt: str | Sequence[str], questions: Sequence[str], *,
        max_new_tokens: int = PROBE_TOKENS, batch_size: int = 16, adapter: AdapterChoice = None) -> list[str]:
    """Greedy short answers, batched; one system prompt for all, or one per question (a benchmark's
    in-context condition). The product always asks with the plain one: the weights alone, with
    ``adapter`` (an attached one, by name) merged or none."""
    systems = [system_prompt] * len(questions) if isinstance(system_prompt, str) else list(system_prompt)
    options = GenerationOptions(max_new_tokens=max_new_tokens, adapter=adapter)
    answers: list[str] = []
    for first in range(0, len(questions), batch_size):
        prompts = [
            [{"role": "system", "content": system}, {"role": "user", "content": f"{q}\n{PROBE_INSTRUCTION}"}]
            for system, q in zip(systems[first : first + batch_size], questions[first : first + batch_size])
        ]
        answers += [g.text.strip() for g in backend.generate_batch(prompts, options)]
    return answers


def score(answer: str, golds: Sequence[str]) -> tuple[float, float]:
    """(contains, QA-F1) of one answer."""
    return float(contains(answer, golds)), qa_f1(answer, golds)


def polluted(answer: str, forbidden: Sequence[str]) -> bool:
    """A near-miss answer that names an answer of the experience's real questions."""
    return contains(answer, forbidden)


def chat_perplexity(backend: Backend, system_prompt: str, text: Sequence[tuple[str, str]] = CHAT_TEXT,
                    adapter: AdapterChoice = None) -> float:
    """Perplexity of the assistant turns of ``text``, each given its user turn, in chat format."""
    total, count = 0.0, 0
    for question, answer in text:
        prompt = backend.render([{"role": "system", "content": system_prompt}, {"role": "user", "content": question}])
        scores = backend.score(prompt, answer, adapter) if adapter else backend.score(prompt, answer)
        total += scores.total
        count += len(scores.logprobs)
    return math.exp(-total / max(1, count))


def general_ability(backend: Backend, system_prompt: str, adapter: AdapterChoice = None) -> dict[str, float]:
    """General questions ("contains") and chat-text perplexity: what consolidation must not damage.
    With ``adapter``, the model with that adapter merged: what a turn routed to it wrongly would get."""
    answers = ask(backend, system_prompt, [q for q, _ in GENERAL_QUESTIONS], adapter=adapter)
    correct = [contains(a, golds) for a, (_, golds) in zip(answers, GENERAL_QUESTIONS)]
    return {
        "general_contains": round(sum(correct) / len(correct), 4),
        "perplexity": round(chat_perplexity(backend, system_prompt, adapter=adapter), 3),
    }


# -- the gate ----------------------------------------------------------------------------------


class GateThresholds(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_efficacy: float = Field(0.25, ge=0, le=1, description='probe "contains" the new experiences must reach')
    retention_tolerance: float = Field(0.15, ge=0, le=1, description='largest allowed drop in "contains" on earlier '
                                                                     "experiences")
    general_tolerance: float = Field(0.1, ge=0, le=1, description="largest allowed drop on general questions")
    perplexity_tolerance: float = Field(0.15, ge=0, description="largest allowed relative rise of chat perplexity")


def gate(candidate: dict, current: dict, thresholds: GateThresholds) -> tuple[bool, list[str]]:
    """Promote only if efficacy reaches its threshold and nothing regresses beyond its tolerance.

    ``candidate`` and ``current`` hold ``general_contains`` and ``perplexity``, and may hold
    ``retention`` (mean contains on earlier experiences; None when there are none); ``candidate``
    also holds ``efficacy`` (None when the new experiences have no probes). Returns (passed,
    reasons), one reason per failed check, each saying what was measured against what.
    """
    reasons = []
    efficacy = candidate.get("efficacy")
    if efficacy is not None and efficacy < thresholds.min_efficacy:
        reasons.append(f"efficacy {efficacy:.2f} < {thresholds.min_efficacy:.2f}")
    before, after = current.get("retention"), candidate.get("retention")
    if before is not None and after is not None and after < before - thresholds.retention_tolerance:
        reasons.append(f"retention fell from {before:.2f} to {after:.2f} (tolerance {thresholds.retention_tolerance:.2f})")
    if candidate["general_contains"] < current["general_contains"] - thresholds.general_tolerance:
        reasons.append(f"general questions fell from {current['general_contains']:.2f} to "
                       f"{candidate['general_contains']:.2f} (tolerance {thresholds.general_tolerance:.2f})")
    limit = current["perplexity"] * (1 + thresholds.perplexity_tolerance)
    if not candidate["perplexity"] <= limit:  # also refuses a NaN perplexity
        reasons.append(f"chat perplexity rose from {current['perplexity']:.1f} to {candidate['perplexity']:.1f} "
                       f"(limit {limit:.1f})")
    return not reasons, reasons
