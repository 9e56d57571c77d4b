"""End to end on the real embedded SmolLM2-135M, through the installed `reverie` command.

Greedy decoding makes these answers repeatable for this model; each assertion is a property a
user would check by hand.
"""

import json

import pytest

from agent import Agent

pytestmark = pytest.mark.embedded


@pytest.fixture(scope="module")
def teodor(shared_data):
    facts = [json.loads(line) for line in (shared_data / "facts" / "facts_dev.jsonl").read_text().splitlines()]
    return next(f for f in facts if f["id"] == "facts-dev-01")


def ask_json(reverie, *args):
    result = reverie("--set", "max_new_tokens=40", "ask", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_ask_answers_the_capital_of_france(reverie, embedded_dir):
    result = reverie("ask", "What is the capital of France?")
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    assert "turn 2" in result.stderr


def test_a_taught_fact_is_recalled_in_a_new_thread_and_used(reverie, embedded_dir, teodor):
    taught = reverie("teach", teodor["context"], "--json")
    assert taught.returncode == 0, taught.stderr
    [experience] = json.loads(taught.stdout)["experience_ids"]
    question = teodor["qa"][1]["q"]  # "In which town does Teodor work?"
    gold = teodor["qa"][1]["a"][0]  # "Port Halvik"

    reply = ask_json(reverie, question)
    assert [m["id"] for m in reply["memories"]] == [experience]
    assert gold in reply["text"]
    # The weights alone do not know it: recall is what answered.
    bare = ask_json(reverie, question, "--no-recall")
    assert bare["memories"] == [] and gold not in bare["text"]
    assert bare["thread_id"] != reply["thread_id"]


def test_feedback_is_stored_against_the_right_turn(reverie, embedded_dir, home):
    first = ask_json(reverie, "Name a fruit.")
    second = ask_json(reverie, "Name a colour.")
    assert reverie("feedback", str(first["turn_id"]), "--down").returncode == 0
    assert reverie("feedback", str(second["turn_id"]), "--fix", "Blue is a colour.").returncode == 0
    with Agent.open(home) as bot:
        got = [(f.turn_id, f.kind) for f in bot.export().feedback]
        assert got == [(first["turn_id"], "down"), (second["turn_id"], "correction")]
        assert bot.store.get_turn(first["turn_id"]).content == first["text"]


def test_a_thread_resumes_in_a_new_process(reverie, embedded_dir):
    opening = ask_json(reverie, "Hi! My name is Ana and I grow tomatoes.")
    follow = ask_json(reverie, "What is my name?", "--thread", opening["thread_id"])
    fresh = ask_json(reverie, "What is my name?")
    assert follow["thread_id"] == opening["thread_id"]
    # The first exchange is in the second process's prompt, and the model uses it.
    assert follow["prompt_tokens"] > fresh["prompt_tokens"] + opening["completion_tokens"]
    assert "Ana" in follow["text"] and "Ana" not in fresh["text"]


@pytest.mark.slow  # a full night on the real model (60 s); the refusal itself runs by default in tests/graphs/test_nightly.py
def test_the_gate_refuses_a_version_that_damages_general_ability(reverie, embedded_dir, teodor):
    # A learning rate 50 times the default wrecks the model's ordinary answers: the night must
    # record the candidate, say why it refused it, and keep serving the base.
    taught = reverie("teach", teodor["context"])
    assert taught.returncode == 0, taught.stderr
    result = reverie("--set", "selfparam.lr=0.05", "--set", "selfparam.epochs=3", "--set", "synthesis.samples=1",
                     "learn", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["version"] == "v1" and not report["promoted"]
    # Each new adapter is judged on its own: its reason names it ("candidate.1 (experiences 1): ...").
    assert any(("chat perplexity rose" in r or "general questions fell" in r) for r in report["reasons"])
    assert report["kept"] == []
    assert report["figures"]["perplexity"] > report["current"]["perplexity"]
    listed = json.loads(reverie("models", "list", "--json").stdout)
    assert listed["active"] == "base"
    answer = ask_json(reverie, "What is the capital of France?", "--no-recall")
    assert answer["model_version"] == "base" and "Paris" in answer["text"]


def test_a_code_answer_waits_for_no_unreliable_judge_unless_asked(reverie, embedded_dir):
    # The card (planted at chance, as this model measures) turns the code check off by default.
    asked = "Write a Python function add(a, b) that returns the sum of a and b."
    plain = ask_json(reverie, asked)
    assert plain["verdicts"] == [] and "def add" in plain["text"]
    # Set by hand, it runs, says the judge is unreliable, and never replaces the answer.
    result = reverie("--set", "max_new_tokens=80", "--set", "verify_code_budget_s=25", "--set", "verify_code=binary",
                     "ask", asked, "--json")
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    [verdict] = reply["verdicts"]
    assert (verdict["kind"], verdict["mode"]) == ("code", "binary") and verdict["result"] in ("yes", "no", "invalid")
    assert verdict["reliability"].startswith("unreliable judge: ") and not verdict["revised"]
    assert verdict["latency_s"] < 60 and "def add" in reply["text"]
    logged = json.loads(reverie("log", "--thread", reply["thread_id"], "--json").stdout)["turns"]
    assert logged[-1]["verdicts"] == reply["verdicts"] and logged[-1]["content"] == reply["text"]
    # A turn without code or options is not checked at all.
    assert ask_json(reverie, "What is the capital of France?")["verdicts"] == []
