"""CodeJudge: parsers on adversarial model output, the severity score, and the judging control
flow with a scripted fake model (it replies from a script; no verdict quality is tested here)."""

import pytest

from agent.errors import InvalidInput
from agent.llm.protocol import Generation
from graphs.verify import prompts
from graphs.verify.codejudge import (
    CodeTask,
    JudgeConfig,
    extract_json,
    judge_code,
    language_name,
    parse_inconsistencies,
    parse_yes_no,
    severity_score,
)


@pytest.mark.parametrize("text, verdict", [
    ("Yes", True), ("yes.", True), (' "YES"', True), ("**No**", False), ("No, the loop is off by one.", False),
    ("not correct", None), ("Not really", None), ("cannot tell", None), ("Nope", None), ("", None),
    ("I think yes", None), ("Final Answer: Yes", None), ("know", None), ("Yesterday", None), ("- no", False),
])
def test_yes_no_is_the_first_word_only(text, verdict):
    assert parse_yes_no(text) is verdict


def test_json_is_found_in_fences_prose_and_alone():
    assert extract_json('Sure! ```json\n[{"a": 1}]\n``` hope it helps') == [{"a": 1}]
    assert extract_json('See [note] and {bad}, then: [{"a": 2}] ok') == [{"a": 2}]
    assert extract_json('{"inconsistency": "x"}') == {"inconsistency": "x"}
    assert extract_json('[{"a": 1}') is None  # truncated
    assert extract_json("") is None


@pytest.mark.parametrize("text, found", [
    ('[{"inconsistency": "None", "severity": "Negligible"}]', []),
    ("```json\n[{\"inconsistency\": \"Off by one\", \"severity\": \"MAJOR\"}]\n```", [{"inconsistency": "Off by one", "severity": "major"}]),
    ('The code fails. {"inconsistency": "Empty list not handled", "severity": "Small"} That is all.',
     [{"inconsistency": "Empty list not handled", "severity": "small"}]),
    ('[{"inconsistency": "Logic error in the comparison"}]', [{"inconsistency": "Logic error in the comparison", "severity": "major"}]),
    ('[{"inconsistency": "Variable total is not defined", "severity": "?"}]',
     [{"inconsistency": "Variable total is not defined", "severity": "fatal"}]),
    ('[{"inconsistency": "It is weird", "severity": "Catastrophic"}]', None),  # no severity, no taxonomy match
    ('["logic error"]', None),
    ('[{"inconsistency": "Off by one", "severity": "Major"}', None),  # truncated
    ("The code is correct.", None),
    ("", None),
])
def test_inconsistency_lists_on_adversarial_output(text, found):
    assert parse_inconsistencies(text) == found


@pytest.mark.parametrize("severities, score", [
    ([], 1.0), (["negligible"] * 5, 1.0), (["small"], 0.95), (["major"], 0.5), (["small"] * 3 + ["major"], 0.35),
    (["major", "major"], 0.0), (["fatal"], 0.0), (["major"] * 3, 0.0),
])
def test_severity_score(severities, score):
    assert severity_score([{"inconsistency": "x", "severity": s} for s in severities]) == score


class ScriptedModel:
    """A fake model replying from a script keyed on the judge's prefill; records every call."""

    def __init__(self, **replies):
        self.replies = {key: list(value) if isinstance(value, list) else [value] for key, value in replies.items()}
        self.calls = []

    def generate(self, messages, options, on_text=None, prefill=""):
        self.calls.append((messages, options, prefill))
        key = {prompts.ANALYZE_PREFILL: "analyze", prompts.SUMMARIZE_PREFILL: "summarize",
               prompts.GRADED_PREFILL: "graded", prompts.PLAIN_PREFILL: "plain"}[prefill]
        queue = self.replies[key]
        return Generation(queue.pop(0) if len(queue) > 1 else queue[0], 10, 5, "stop")


TASK = CodeTask("Return the sum of a list.", "def total(xs):\n    return sum(xs)\n", "Python", reference="def total(xs): ...")


def test_binary_analyzes_then_summarizes_with_a_tiny_budget():
    model = ScriptedModel(analyze="The code sums the list; it is correct.", summarize="Yes")
    verdict = judge_code(model, TASK, "binary")
    assert (verdict.result, verdict.score, verdict.invalid, verdict.reason) == ("yes", 1.0, 0, None)
    assert verdict.analysis == "The code sums the list; it is correct."
    (analyze, opts1, _), (summarize, opts2, _) = model.calls
    assert "Reference solution" in analyze[1]["content"] and "only there to help" in analyze[0]["content"]
    assert "it is correct" in summarize[-1]["content"] and len(summarize) == 8  # system, 3 worked examples, the review
    assert (opts1.temperature, opts2.max_new_tokens) == (0.0, 10)


def test_an_unparseable_summary_is_an_explicit_invalid_verdict():
    verdict = judge_code(ScriptedModel(analyze="Hmm.", summarize="Not sure, it cannot be said."), TASK, "binary")
    assert (verdict.result, verdict.score, verdict.invalid) == ("invalid", None, 1)
    assert "not Yes or No" in verdict.reason


def test_sampled_runs_are_averaged_and_invalid_samples_counted():
    model = ScriptedModel(analyze="...", summarize=["Yes", "Maybe", "No", "Yes"])
    verdict = judge_code(model, TASK, "binary", JudgeConfig(samples=4))
    assert (verdict.result, verdict.score, verdict.samples, verdict.invalid) == ("yes", 0.6667, 4, 1)
    analyses = [options for _, options, prefill in model.calls if prefill == prompts.ANALYZE_PREFILL]
    assert [(o.temperature, o.top_p, o.seed) for o in analyses] == [(0.4, 0.9, i) for i in range(4)]


def test_graded_scores_by_severity():
    model = ScriptedModel(graded='[{"inconsistency": "Empty list", "severity": "Small"}, '
                                 '{"inconsistency": "Wrong sign", "severity": "Major"}]')
    verdict = judge_code(model, TASK, "graded")
    assert (verdict.result, verdict.score) == ("no", 0.45)
    assert [i["severity"] for i in verdict.inconsistencies] == ["small", "major"]
    clean = judge_code(ScriptedModel(graded='[{"inconsistency": "None", "severity": "Negligible"}]'), TASK, "graded")
    assert (clean.result, clean.score) == ("yes", 1.0)
    assert judge_code(ScriptedModel(graded="Looks fine to me"), TASK, "graded").result == "invalid"


def test_plain_baseline_and_the_time_budget():
    assert judge_code(ScriptedModel(plain="No."), TASK, "plain").result == "no"
    model = ScriptedModel(analyze="...", summarize="Yes")
    verdict = judge_code(model, TASK, "binary", JudgeConfig(budget_s=0))
    assert (verdict.result, verdict.reason, model.calls) == ("invalid", "over the time budget", [])


def test_bad_input_is_refused_with_one_clear_error():
    with pytest.raises(InvalidInput, match="code is empty"):
        CodeTask("Sum a list.", "  \n")
    with pytest.raises(InvalidInput, match="binary"):
        CodeTask("Sum a list.", "def f():\x00")
    with pytest.raises(InvalidInput, match="unknown language 'cobol'; known: .*python"):
        language_name("cobol")
    assert language_name("JS") == "JavaScript"
    with pytest.raises(InvalidInput, match="unknown mode"):
        judge_code(ScriptedModel(), TASK, "fuzzy")
