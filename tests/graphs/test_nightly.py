"""The nightly graph end to end on the tiny random model: real SQLite, Chroma, LangGraph, peft.

The tiny model cannot learn facts; these tests check what the night does with what it measures:
versions and manifests, probes kept out of training, the gate, dry runs, extraction, reloads.
"""

import json
from pathlib import Path

import pytest

from agent import Agent

FAST = dict(selfparam={"epochs": 2}, synthesis={"samples": 1}, max_new_tokens=8)
PROBE = {"question": "What is Teodor's dog called?", "answers": ["Pimento"]}


@pytest.fixture
def open_bot(home, tiny_dir):
    opened = []

    def make(**overrides):
        bot = Agent.open(home, model=str(tiny_dir), **{**FAST, **overrides})
        opened.append(bot)
        return bot

    yield make
    for bot in opened:
        bot.close()


def test_learn_makes_a_promoted_version_and_never_trains_on_probes(open_bot):
    bot = open_bot(gate={"min_efficacy": 0.0})
    given = bot.teach("My brother Teodor works in Port Halvik. His greyhound is called Pimento.", probes=[PROBE])
    bot.chat("My sister Ines moved to Lisbon in May.")  # an informative turn: learned too
    bot.chat("Where does Ines live?")  # a question: not learned

    report = bot.learn()

    extracted = [e for e in bot.memories() if e.source == "extracted"]
    assert [e.text for e in extracted] == ["My sister Ines moved to Lisbon in May."]
    assert report.new == [given, extracted[0].id]
    assert report.version == "v1" and report.promoted and report.passed
    assert bot.backend.version == "v1"  # reloaded in place
    version = bot.model("v1")
    assert version.manifest["gate"] == {"passed": True, "reasons": [], "kept": ["candidate.1"]}
    assert version.manifest["experiences"] == {"new": report.new, "kept": report.new}
    assert set(version.manifest["figures"]) >= {"efficacy", "retention", "pollution", "general_contains", "perplexity"}
    # Its library: one frozen adapter holding both experiences (learn.adapter_size is 2), in its folder.
    [adapter] = bot.versions.library(version)
    assert (adapter.name, adapter.user, adapter.experiences) == ("v1.1", "default", report.new)
    assert (Path(adapter.path) / "adapter_config.json").is_file() and adapter.path.startswith(version.path)
    assert bot.library == [adapter]

    # Probes, given or written by the night, never appear in what was trained on.
    probes = bot.retention.probes()
    assert PROBE["question"] in {p.question for p in probes}
    assert any(p.origin == "synthesized" for p in probes)  # the extracted experience got its own
    trained = [json.loads(line)["text"] for line in (Path(version.path) / "target_set.jsonl").open()]
    assert trained and not any(p.question in text for p in probes for text in trained)

    # Every probe was scored on v1; nothing new remains for the next night.
    assert {r.probe_id for r in bot.retention.results(report.run_id)} == {p.id for p in probes}
    again = bot.learn()
    assert again.stop == "nothing new to consolidate" and again.run_id is None


def test_a_refused_version_is_recorded_and_the_active_one_kept(open_bot):
    # The tiny random model learns nothing, so demanding efficacy refuses it (the damage case,
    # which needs a model that has something to lose, runs on the embedded model in tests/e2e).
    bot = open_bot(gate={"min_efficacy": 1.0})
    bot.teach("My brother Teodor works in Port Halvik.", probes=[PROBE])
    report = bot.learn()
    assert not report.promoted and report.version == "v1"
    assert report.reasons == [f"candidate.1 (experiences {report.new[0]}): efficacy 0.00 < 1.00"]
    assert bot.active_model().id == "base" and bot.backend.version == "base"
    assert bot.model("v1").manifest["gate"] == {"passed": False, "reasons": report.reasons, "kept": []}
    assert bot.retention.runs()[0].promoted is False
    # Refused: the experience stays short-term and is still recalled.
    assert {e.status for e in bot.memories()} == {"short_term"}
    assert bot.chat("Where does Teodor work?").memories[0]["id"] == report.new[0]
    # Not in any promoted version: the next night learns it again as new, with the same probe.
    again = bot.learn()
    assert again.new == report.new and again.version == "v2" and again.parent == "base"
    assert again.synthesis[str(report.new[0])]["reused"] and [p.question for p in bot.retention.probes()] == [
        PROBE["question"]]



def test_refused_experiences_are_retried_then_left_to_recall(open_bot):
    bot = open_bot(gate={"min_efficacy": 1.0})  # the tiny model learns nothing: every adapter is refused
    first = bot.teach("My brother Teodor works in Port Halvik.", probes=[PROBE])
    second = bot.teach("My cat Miso eats salmon on Sundays.")
    one = bot.learn()
    assert [a["experiences"] for a in one.figures["adapters"].values()] == [[first, second]] and one.retried == []
    # Refused: tried again on the next night, and counted.
    two = bot.learn()
    assert two.retried == [first, second]
    # not the same training again: identical pairs and seed would remake the refused adapter exactly
    seeds = [t["config"]["seed"] for t in (one.training["adapters"][0], two.training["adapters"][0])]
    assert seeds == [0, 1]
    assert bot.retention.refusals(bot.settings.model) == {first: 2, second: 2}
    # Refused on learn.max_attempts (2) nights: no third night trains them; recall still answers.
    three = bot.learn()
    assert three.run_id is None and three.parked == [first, second]
    assert three.stop == "nothing new to consolidate (2 left to recall after 2 refused nights)"
    assert bot.chat("Where does Teodor work?").memories[0]["id"] == first
    bot.close()
    # Raising the bound tries them again.
    assert open_bot(gate={"min_efficacy": 1.0}, learn={"max_attempts": 3}).learn().new == [first, second]

def test_a_dry_run_shows_the_plan_and_writes_nothing(open_bot):
    bot = open_bot()
    bot.teach("My brother Teodor works in Port Halvik.")
    bot.models()  # registers the base version, as any first use does
    counts = lambda: [bot.store.query(f"SELECT COUNT(*) AS n FROM {t}")[0]["n"]  # noqa: E731
                      for t in ("probes", "training_pairs", "learn_runs", "model_versions", "experiences",
                                "general_results")]
    before = counts()
    report = bot.learn(dry_run=True)
    assert report.dry_run and report.run_id is None and report.version is None
    assert list(report.synthesis) == [str(report.new[0])] and report.synthesis[str(report.new[0])]["pairs"]
    assert counts() == before


def test_a_night_learns_at_most_its_cap_oldest_first(open_bot):
    bot = open_bot(learn={"max_new": 1})
    first = bot.teach("My brother Teodor works in Port Halvik.")
    second = bot.teach("My grandmother Ysolde plays the bandoneon.")
    report = bot.learn(dry_run=True)
    assert report.new == [first] and report.deferred == [second]
    assert list(report.synthesis) == [str(first)]  # the deferred one costs nothing tonight


def test_an_unknown_step_is_refused_before_anything_runs(open_bot):
    from agent.errors import InvalidInput

    bot = open_bot()
    with pytest.raises(InvalidInput, match="unknown step 'ppo'; a night's steps are: clean, selfparam, cory"):
        bot.learn(only="ppo")
    assert bot.retention.runs() == [] and bot._backend is None  # nothing loaded, nothing written


def test_a_night_first_cleans_the_new_feedback(open_bot):
    bot = open_bot(gate={"min_efficacy": 0.0})
    reply = bot.chat("My brother Teodor works in Port Halvik.")
    bot.feedback(reply.turn_id, "up")
    report = bot.learn()
    assert report.cleaning["run_id"] == 1 and report.cleaning["judged"] == 1 and report.cleaning["method"] == "sac"
    assert sum(report.cleaning["counts"].values()) == 1
    bot.teach("His greyhound is called Pimento.")
    assert bot.learn().cleaning is None  # no new feedback: nothing to clean
    assert open_bot(learn={"clean_feedback": False}).learn().cleaning is None


def test_only_runs_the_one_step_it_names(open_bot):
    bot = open_bot(gate={"min_efficacy": 0.0})
    reply = bot.chat("Hello there.")
    bot.feedback(reply.turn_id, "up")
    taught = bot.teach("My brother Teodor works in Port Halvik.")

    cleaned = bot.learn(only="clean")
    assert cleaned.cleaning["judged"] == 1
    assert (cleaned.new, cleaned.version, cleaned.run_id) == ([], None, None)  # nothing consolidated
    bot.feedback(reply.turn_id, "down")
    learned = bot.learn(only="selfparam")
    assert learned.cleaning is None and learned.new == [taught] and learned.version == "v1"
    assert len(bot.store.query("SELECT id FROM cleaning_runs")) == 1  # the second thumb waits for a night that cleans


def test_a_stop_request_ends_the_night_at_its_next_step_and_changes_nothing_served(open_bot):
    from agent.errors import Interrupted

    bot = open_bot(gate={"min_efficacy": 0.0})
    taught = bot.teach("My brother Teodor works in Port Halvik.")

    class StopWhenTrainingStarts:  # what Ctrl-C does, at a known moment: the first training step
        def phase(self, description, total=None):
            return lambda units=1: bot.stopping.set() if description.startswith("training") else None

        def note(self, text): ...

    with pytest.raises(Interrupted, match="active version is unchanged"):
        bot.learn(progress=StopWhenTrainingStarts())
    [run] = bot.retention.runs()
    assert (run.status, run.version, run.promoted) == ("interrupted", None, False) and run.finished_at
    assert bot.active_model().id == "base" and bot.versions.list()[-1].id == "base"
    bot.stopping.clear()
    assert bot.learn().new == [taught]  # the stopped night's experience is still new



def _digest(folder: Path) -> dict[str, str]:
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).iterdir())}


def test_a_later_night_adds_an_adapter_and_never_changes_an_earlier_one(open_bot):
    bot = open_bot(gate={"min_efficacy": 0.0}, learn={"extract_turns": False})
    first = bot.teach("My brother Teodor works in Port Halvik.")
    assert bot.learn().promoted
    [night1] = bot.library
    before = _digest(night1.path)

    second = bot.teach("My grandmother Ysolde plays the bandoneon.")
    report = bot.learn()
    assert report.new == [second] and report.promoted and report.version == "v2"
    assert [(a.name, a.experiences) for a in bot.library] == [("v1.1", [first]), ("v2.1", [second])]
    assert bot.library[0].path == night1.path and _digest(night1.path) == before  # listed again, untouched
    # v1's folder holds an adapter v2 serves: pruning to one version keeps it.
    assert bot.prune(keep=0) == [] and Path(night1.path).is_dir()
    # Rolling back to v1 serves v1's library; the night-2 experience is new again.
    bot.rollback()
    bot.sync_version()
    assert [a.name for a in bot.library] == ["v1.1"]
    assert bot.learn(dry_run=True).new == [second]


def test_one_user_s_adapter_never_answers_another_user(open_bot):
    bot = open_bot(gate={"min_efficacy": 0.0}, learn={"extract_turns": False})
    secret = "My bank PIN is 4821 and my secret project is called Bluefinch."
    bot.teach(secret, user="alice")
    assert bot.learn(user="alice").promoted
    [adapter] = bot.library
    assert adapter.user == "alice"
    asked = "What is my bank PIN?"
    assert bot.chat(asked, user="alice", recall=False).adapter == adapter.name  # routed, with recall off
    bob = bot.chat(asked, user="bob", recall=False)
    assert bob.adapter is None and bob.memories == []
    bot.teach(secret, user="bob")  # even the same words taught by bob: his query finds his experience,
    assert bot.chat(asked, user="bob").adapter is None  # which is in no adapter of his


def test_forget_takes_an_experience_out_of_the_weights_as_a_new_version(open_bot):
    bot = open_bot(gate={"min_efficacy": 0.0}, learn={"extract_turns": False})
    secret = bot.teach("My bank PIN is 4821.", user="alice")
    other = bot.teach("My cat Miso eats salmon on Sundays.", user="alice")
    kept = bot.teach("My brother Teodor works in Port Halvik.", user="alice")
    bot.learn(user="alice", dry_run=False)
    assert [a.experiences for a in bot.library] == [[secret, other], [kept]]
    assert bot.chat("What is my bank PIN?", user="alice", recall=False).adapter == "v1.1"

    forgotten = bot.forget(secret)
    assert (forgotten.version, forgotten.dropped, forgotten.relearn) == ("v2", ["v1.1"], [other])
    v2 = bot.model("v2")
    assert v2.learner == "forget" and v2.parent == "v1" and v2.manifest["forgot"] == secret
    assert bot.active_model().id == "v2" and [a.name for a in bot.library] == ["v1.2"]  # hot: served at once
    assert bot.chat("What is my bank PIN?", user="alice", recall=False).adapter is None
    assert bot.chat("Where does Teodor work?", user="alice", recall=False).adapter == "v1.2"  # untouched
    # The dropped adapter's other experience is learned again by the next night; the forgotten never.
    assert bot.learn(user="alice", dry_run=True).new == [other]
    assert bot.forget(kept).version == "v3" and bot.library == []


def test_an_adapter_that_hurt_the_model_is_trained_again_with_the_kl_alone(open_bot, tiny_dir, tmp_path):
    # A high learning rate and no rise of chat perplexity allowed: the tiny model's adapter hurts
    # it with the answers' cross-entropy (the default) and, less, with the KL alone.
    strict = dict(gate={"min_efficacy": 0.0, "perplexity_tolerance": 0.0}, selfparam={"epochs": 2, "lr": 0.05})
    bot = open_bot(**strict)
    bot.teach("My brother Teodor works in Port Halvik.", probes=[PROBE])
    report = bot.learn()
    [first] = report.retrained["candidate.1"]
    assert first.startswith("chat perplexity rose") and list(report.retrained) == ["candidate.1"]
    [config] = [a["config"] for a in report.training["adapters"]]
    assert (config["answer_ce"], config["seed"]) == (0.0, 0)  # trained again once, with the KL alone
    assert report.training["seconds"] > report.training["adapters"][0]["seconds"]  # both trainings counted
    [second] = report.reasons  # the night's verdict is the second training's
    assert second.startswith("candidate.1 (experiences 1): chat perplexity rose") and first not in second
    assert not report.promoted and bot.model(report.version).manifest["retrained"] == report.retrained
    # The second training started from the plain weights: a night with the KL alone from the start
    # makes the same adapter, to the last digit of its perplexity.
    with Agent.open(tmp_path / "kl", model=str(tiny_dir), **{**FAST, **strict,
                    "selfparam": {**strict["selfparam"], "answer_ce": 0.0}}) as alone:
        alone.teach("My brother Teodor works in Port Halvik.", probes=[PROBE])
        kl = alone.learn()
    assert kl.reasons == report.reasons and kl.retrained == {}  # nothing to fall back to
