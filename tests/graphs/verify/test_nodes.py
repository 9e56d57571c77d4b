"""The chat graph's verifiers, with scripted fake models (control flow only, no verdict quality)."""

from types import SimpleNamespace

from agent.llm.protocol import Generation, GenerationOptions
from graphs.verify import prompts
from graphs.verify.nodes import ChoiceCheck, CodeCheck

WRONG = "Here you go:\n```python\ndef total(xs):\n    return 0\n```"
RIGHT = "Fixed:\n```python\ndef total(xs):\n    return sum(xs)\n```"


class ScriptedCoder:
    """Judges code by a script: 'return 0' is wrong, anything else right; the revision is RIGHT."""

    def __init__(self, revision=RIGHT):
        self.revision, self.calls = revision, []

    def count_chat_tokens(self, messages):
        return sum(len(m["content"].split()) for m in messages)

    def generate(self, messages, options, on_text=None, prefill=""):
        self.calls.append((prefill, messages))
        text = messages[-1]["content"]
        if prefill == prompts.ANALYZE_PREFILL:
            reply = "It always returns 0, so it is wrong." if "return 0" in text else "It sums the list. Correct."
        elif prefill == prompts.SUMMARIZE_PREFILL:
            reply = "No" if "wrong" in text else "Yes"
        else:  # the revision request
            reply = self.revision
        return Generation(reply, 50, 7, "stop")


def state_with(reply_text, message="Write total(xs), the sum of a list."):
    return {"messages": [{"role": "user", "content": message}], "memories": [],
            "reply": {"text": reply_text, "completion_tokens": 20, "finish_reason": "stop"}}


def ctx_for(backend):
    return SimpleNamespace(backend=backend, system_prompt="Sys.", options=GenerationOptions(), prompt_budget=1000,
                           on_status=None)


def test_a_no_is_revised_once_and_the_better_answer_kept():
    model = ScriptedCoder()
    outcome = CodeCheck("binary", budget_s=60)(state_with(WRONG), ctx_for(model))
    v = outcome.verdict
    assert (v["kind"], v["mode"], v["revised"], v["kept"], v["result"], v["score"]) == ("code", "binary", True, "revised", "yes", 1.0)
    assert v["second"]["result"] == "yes" and "always returns 0" in v["analysis"]
    assert outcome.reply["text"] == RIGHT and outcome.reply["completion_tokens"] == 27
    revision = next(messages for prefill, messages in model.calls if prefill == "")
    assert revision[-2] == {"role": "assistant", "content": WRONG} and "always returns 0" in revision[-1]["content"]


def test_a_revision_that_is_no_better_is_dropped():
    outcome = CodeCheck("binary", budget_s=60)(state_with(WRONG), ctx_for(ScriptedCoder(revision=WRONG)))
    assert (outcome.verdict["revised"], outcome.verdict["kept"], outcome.verdict["result"]) == (True, "original", "no")
    assert outcome.reply is None


def test_a_yes_and_a_reply_without_code_cost_no_revision():
    model = ScriptedCoder()
    outcome = CodeCheck("binary")(state_with(RIGHT), ctx_for(model))
    assert (outcome.verdict["result"], outcome.verdict["revised"], outcome.reply) == ("yes", False, None)
    assert [prefill for prefill, _ in model.calls] == [prompts.ANALYZE_PREFILL, prompts.SUMMARIZE_PREFILL]
    quiet = ScriptedCoder()
    assert CodeCheck("binary")(state_with("The sum is 6."), ctx_for(quiet)) is None and quiet.calls == []


def test_an_exhausted_budget_stops_before_revising():
    outcome = CodeCheck("binary", budget_s=0.0)(state_with(WRONG), ctx_for(ScriptedCoder()))
    assert (outcome.verdict["result"], outcome.verdict["reason"], outcome.verdict["revised"]) == (
        "invalid", "over the time budget", False)


class Ordered:
    """A comparator model with a fixed preference (fair: no position bias) or one that always says A."""

    def __init__(self, prefer=None):
        self.prefer = prefer  # None: always A

    def encode(self, text):
        return {"A": [0], " A": [1], "B": [2], " B": [3]}.get(text, [4, 4])

    def render(self, messages, add_generation_prompt=True):
        return messages[-1]["content"]

    def logits(self, prompt, continuation=""):
        import re

        import torch

        a, b = re.search(r"Option A: (.*)\nOption B: (.*)\n", prompt).groups()
        if self.prefer is None:
            a_wins = True
        else:
            a_wins = (self.prefer.index(a) < self.prefer.index(b)) != ("worse" in prompt)
        row = torch.zeros(5)
        row[1 if a_wins else 3] = 5.0
        return row[None, :]


def test_a_consistent_choice_keeps_the_reply():
    state = state_with("Toast.", "Which is better for breakfast, porridge, eggs or toast?")
    outcome = ChoiceCheck()(state, ctx_for(Ordered(["eggs", "toast", "porridge"])))
    v = outcome.verdict
    assert (v["kind"], v["result"], v["ranked"]) == ("choice", "consistent", ["eggs", "toast", "porridge"])
    assert v["order_flips"] == [] and v["negation_failures"] == [] and outcome.reply is None


def test_an_inconsistent_choice_says_it_is_unsure():
    state = state_with("Porridge, definitely.", "Which is better for breakfast, porridge or toast?")
    outcome = ChoiceCheck()(state, ctx_for(Ordered()))
    v = outcome.verdict
    assert v["result"] == "inconsistent" and v["order_flips"] == [["porridge", "toast"]]
    assert v["s_comm"] == 0.0 and len(v["negation_failures"]) == 2
    assert outcome.reply["text"].startswith("I am not confident") and outcome.reply["text"].endswith("Porridge, definitely.")
    assert ChoiceCheck()(state_with("Hi.", "Hello there"), ctx_for(Ordered())) is None


def test_a_verifier_says_what_it_is_doing():
    heard = []
    ctx = SimpleNamespace(**{**vars(ctx_for(ScriptedCoder())), "on_status": heard.append})
    CodeCheck("binary", budget_s=60)(state_with(WRONG), ctx)
    assert heard == ["checking the code (binary CodeJudge, up to 60 s)", "the check said No: writing a revised answer"]


def test_an_unreliable_code_judge_is_shown_and_never_replaces_the_answer():
    model = ScriptedCoder()
    outcome = CodeCheck("binary", budget_s=60, unreliable="CodeJudge binary tau-b -0.20")(state_with(WRONG),
                                                                                          ctx_for(model))
    v = outcome.verdict
    assert (v["result"], v["revised"], v["kept"]) == ("no", False, "original") and outcome.reply is None
    assert v["reliability"] == "unreliable judge: CodeJudge binary tau-b -0.20"
    assert [prefill for prefill, _ in model.calls] == [prompts.ANALYZE_PREFILL, prompts.SUMMARIZE_PREFILL]


def test_an_unavailable_choice_check_says_so_and_computes_nothing():
    state = state_with("Porridge, definitely.", "Which is better for breakfast, porridge or toast?")
    outcome = ChoiceCheck(unavailable="comparator s_neg 0.02")(state, ctx_for(object()))  # no model is asked
    assert outcome.verdict["result"] == "unavailable" and outcome.reply is None
    assert outcome.verdict["analysis"] == "the choice check is unavailable: comparator s_neg 0.02"
