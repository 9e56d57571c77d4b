"""Evaluation figures and the gate (pure), and the general-ability checks on the tiny model."""

import math
from types import SimpleNamespace

from learners import evaluate as ev

CURRENT = {"general_contains": 0.6, "perplexity": 20.0, "retention": 0.8}


def candidate(**changes):
    return {"efficacy": 0.5, "retention": 0.8, "general_contains": 0.6, "perplexity": 20.0, **changes}


def test_gate_passes_a_version_that_learned_and_damaged_nothing():
    assert ev.gate(candidate(), CURRENT, ev.GateThresholds()) == (True, [])


def test_gate_refuses_a_version_that_damages_general_ability():
    passed, reasons = ev.gate(candidate(general_contains=0.3), CURRENT, ev.GateThresholds())
    assert not passed and reasons == ["general questions fell from 0.60 to 0.30 (tolerance 0.10)"]
    passed, reasons = ev.gate(candidate(perplexity=40.0), CURRENT, ev.GateThresholds())
    assert not passed and reasons[0].startswith("chat perplexity rose from 20.0 to 40.0")
    assert not ev.gate(candidate(perplexity=math.nan), CURRENT, ev.GateThresholds())[0]


def test_gate_checks_efficacy_and_retention_with_their_tolerances():
    thresholds = ev.GateThresholds(min_efficacy=0.3, retention_tolerance=0.1)
    assert ev.gate(candidate(efficacy=0.2), CURRENT, thresholds)[1] == ["efficacy 0.20 < 0.30"]
    assert ev.gate(candidate(retention=0.75), CURRENT, thresholds)[0]  # within tolerance
    assert ev.gate(candidate(retention=0.6), CURRENT, thresholds)[1] == [
        "retention fell from 0.80 to 0.60 (tolerance 0.10)"]
    # Nothing to measure is not a failure: no probes for the new experiences, no earlier ones.
    assert ev.gate(candidate(efficacy=None, retention=None), {**CURRENT, "retention": None}, thresholds)[0]


def test_score_and_pollution():
    contains, f1 = ev.score("Teodor's dog is called Pimento.", ["Pimento"])
    assert contains == 1.0 and abs(f1 - 1 / 3) < 1e-9  # 1 of 5 words: P 0.2, R 1
    assert ev.score("I do not know.", ["Pimento"])[0] == 0.0
    assert ev.polluted("The cat is called Pimento.", ["Pimento", "Port Halvik"])
    assert not ev.polluted("Teodor has no cat that I know of.", ["Pimento"])


def test_general_ability_on_the_tiny_model(tiny_backend):
    figures = ev.general_ability(tiny_backend, "You are a helpful AI assistant.")
    assert 0.0 <= figures["general_contains"] <= 1.0
    # A random model is a poor predictor of ordinary text: far above the embedded model's ~20.
    assert math.isfinite(figures["perplexity"]) and figures["perplexity"] > 100


def test_ask_takes_one_system_prompt_per_question():
    # A scripted fake model that echoes what it was asked: this checks the batching and the
    # prompts ask builds, not any model's answers.
    class Echo:
        batches: list = []

        def generate_batch(self, prompts, options):
            self.batches.append(len(prompts))
            return [SimpleNamespace(text=f" {p[0]['content']} | {p[1]['content'].splitlines()[0]} ") for p in prompts]

    echo = Echo()
    questions = ["What is A?", "What is B?", "What is C?"]
    answers = ev.ask(echo, ["Facts: A is 1.", "Facts: B is 2.", "Facts: C is 3."], questions, batch_size=2)
    assert answers == ["Facts: A is 1. | What is A?", "Facts: B is 2. | What is B?", "Facts: C is 3. | What is C?"]
    assert echo.batches == [2, 1]
    assert ev.ask(echo, "Plain.", questions[:1]) == ["Plain. | What is A?"]  # one prompt for all
