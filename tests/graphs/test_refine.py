"""The refine step (graphs/refine.py) through the agent, on the tiny random model: prompts held
out, CORY trained, the policy gated on its own and recorded as its user's policy adapter, and
served only to that user. The tiny model cannot learn the reward (its logits are near uniform),
so its policy is refused; which policy a turn merges is tested by promoting it by hand."""

import json

import pytest

from agent import Agent
from agent.errors import InvalidInput

FAST = {"epochs": 2, "batch_size": 4, "mini_batch": 2, "max_new_tokens": 4, "swap_every": 1}


def prompt_set(tmp_path, count: int = 8):
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": f"What is {n} plus {n}?", "answer": 2 * n})
                              for n in range(1, count + 1)))
    return path


def open_bot(home, tiny_dir, **refine) -> Agent:
    return Agent.open(home, model=str(tiny_dir), max_new_tokens=8, cory=FAST, refine=refine)


def test_a_policy_that_adds_no_reward_is_refused_and_recorded(home, tiny_dir, tmp_path):
    with open_bot(home, tiny_dir, reward="exact", prompts=str(prompt_set(tmp_path))) as bot:
        report = bot.learn(only="cory")
        refine = report.refine
        assert refine["prompts"] == {"train": 6, "heldout": 2, "from_set": 8, "from_turns": 0}
        assert [row["iteration"] for row in refine["training"]["curve"]] == [1, 2]
        assert not refine["passed"] and not refine["promoted"]
        assert refine["reasons"][0].startswith("held-out reward")
        version = bot.versions.get(refine["version"])
        assert version.learner == "cory" and version.manifest["refine"]["gate"]["passed"] is False
        policy = [a for a in bot.versions.library(version) if a.kind == "policy"]
        assert [(a.name, a.user, a.experiences) for a in policy] == [(f"{version.id}.policy", "default", [])]
        assert bot.active_model().id != version.id  # refused: the base still serves
        shown = bot.retention_report()["refines"]
        assert [(r["version"], r["promoted"], len(r["curve"])) for r in shown] == [(version.id, False, 2)]
        from agent.plots import plot_retention

        assert plot_retention(bot.retention_report(), tmp_path / "r.png").stat().st_size > 0


def test_a_promoted_policy_answers_every_turn_of_its_user_and_no_one_else(home, tiny_dir, tmp_path):
    with open_bot(home, tiny_dir, reward="exact", prompts=str(prompt_set(tmp_path))) as bot:
        version = bot.learn(user="ana", only="cory").refine["version"]
        bot.versions.promote(version, reason="test: serve the refused policy")
        reply = bot.chat("Hello there", user="ana")
        assert reply.policy == f"{version}.policy" and reply.model_version == version
        assert bot._backend._adapters.merged == (f"{version}.policy",)
        other = bot.chat("Hello there", user="bob")
        assert other.policy is None and bot._backend._adapters.merged == ()


def test_refine_refuses_bad_set_ups_with_one_clear_line(home, tiny_dir, tmp_path):
    with open_bot(home, tiny_dir) as bot:
        with pytest.raises(InvalidInput, match=r"set \[refine\] reward"):
            bot.learn(only="cory")
    with open_bot(home, tiny_dir, reward="exact", prompts=str(prompt_set(tmp_path, 3))) as bot:
        assert bot.learn(only="cory").refine["stop"] == "3 prompts to refine on; at least 4 are needed"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "answer": 1}\n{"question": "b"}\n')
    with open_bot(home, tiny_dir, reward="exact", prompts=str(bad)) as bot:
        with pytest.raises(InvalidInput, match="bad.jsonl, line 2"):
            bot.learn(only="cory")
    with open_bot(home, tiny_dir, reward="judge:vibes", prompts=str(prompt_set(tmp_path))) as bot:
        with pytest.raises(InvalidInput, match="unknown reward"):
            bot.learn(only="cory")
    with open_bot(home, tiny_dir, reward="comparator", prompts=str(prompt_set(tmp_path))) as bot:  # chance card
        assert bot.learn(only="cory").refine["stop"].startswith("the comparator is not trusted as a reward: "
                                                                "comparator s_neg 0.02")
    with open_bot(home, tiny_dir, reward="codejudge", prompts=str(prompt_set(tmp_path))) as bot:
        assert bot.learn(only="cory").refine["stop"].startswith("CodeJudge is not trusted as a reward: "
                                                                "CodeJudge binary tau-b -0.20")


def test_the_codejudge_reward_scores_code_and_gives_no_code_nothing(tiny_backend):
    from graphs.rewards import codejudge

    scores = codejudge(tiny_backend)(["Add two numbers.", "Add two numbers."],
                                     ["Here:\n```python\ndef add(a, b):\n    return a + b\n```", "Just add them."])
    assert scores[1] == 0.0 and 0.0 <= scores[0] <= 1.0


def test_the_comparator_reward_prefers_against_today_s_answer_asked_once(tiny_backend):
    from graphs.rewards import comparator

    asked = []
    reward = comparator(tiny_backend, lambda q: asked.append(q) or "Today's answer.")
    scores = reward(["Hi", "Hi", "Bye"], ["Hello!", "Hey.", "Farewell."])
    assert asked == ["Hi", "Bye"] and all(-0.5 <= s <= 0.5 for s in scores)
    assert reward(["Hi"], ["Today's answer."])[0] == pytest.approx(0.0, abs=1e-6)  # itself: no preference


def test_the_feedback_reward_is_a_model_trained_on_the_cleaned_view_only(home, tiny_dir, tmp_path, monkeypatch):
    from learners import reward_model as rm

    rows = [json.dumps({"prompt": [{"role": "user", "content": f"Name a colour, number {n}."}],
                        "chosen": [{"role": "assistant", "content": f"Blue, {n}."}],
                        "rejected": [{"role": "assistant", "content": f"Red, {n}."}]}) for n in range(10)]
    trained_on = []
    train = rm.train
    monkeypatch.setattr(rm, "train", lambda model, tok, pairs, *a, **k: trained_on.append(pairs) or train(
        model, tok, pairs, *a, **k))
    with open_bot(home, tiny_dir, reward="feedback", prompts=str(prompt_set(tmp_path))) as bot:
        assert bot.learn(only="cory").refine["stop"].startswith("no cleaned feedback yet")
        bot.import_feedback(rows, "trl")
        assert bot.export_feedback(cleaned=True) == []
        bot.clean_feedback("sac")
        bot.import_feedback(rows[1:2], "trl", source="after the cleaning")  # not in the cleaned view
        view = bot.export_feedback(cleaned=True)
        refine = bot.learn(only="cory").refine
        assert refine["training"] is not None and len(trained_on) == 1
        assert sorted(p.chosen for p in trained_on[0]) == sorted(r["chosen"][0]["content"] for r in view)
        assert len(trained_on[0]) == len(view) <= 10  # the pair imported after cleaning is not in it
        [folder] = (home / "cache" / "reward-models").iterdir()
        assert folder.name.endswith("-cleaning-1") and (folder / "config.json").is_file()
        bot.learn(only="cory")
        assert len(trained_on) == 1  # the same view: the same reward model, not trained again
