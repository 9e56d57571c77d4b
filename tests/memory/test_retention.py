"""Probes, training pairs, learn runs and the retention report, on a real SQLite store."""

import pytest

from memory.retention import Retention
from memory.store import Store
from memory.versions import Versions


@pytest.fixture
def parts(home):
    store = Store.open(home)
    versions = Versions(store, home / "versions")
    versions.ensure_base("m", home / "base")
    yield store, versions, Retention(store)
    store.close()


def _version(versions, parent="base"):
    return versions.create(parent=parent, learner="selfparam", manifest={}, write=lambda folder: None).id


def test_probes_round_trip_and_never_become_training_pairs(parts):
    store, _, retention = parts
    (e,) = store.add_experiences(["My dog is called Pimento."], "taught", "u")
    retention.add_probes(e.id, [("What is my dog called?", ["Pimento"], "recall"),
                                ("What is my cat called?", ["unknown"], "near_miss")], origin="given")
    probes = retention.probes([e.id])
    assert [(p.question, p.answers, p.kind, p.origin) for p in probes] == [
        ("What is my dog called?", ["Pimento"], "recall", "given"),
        ("What is my cat called?", ["unknown"], "near_miss", "given")]
    with pytest.raises(ValueError, match="probe question would be trained on"):
        retention.add_pairs(e.id, [("What is my dog called?", "Your dog is Pimento.", False)])
    assert retention.pairs([e.id]) == {e.id: []}  # refused as a whole
    retention.add_pairs(e.id, [("What did I tell you about my dog?", "Your dog is called Pimento.", True)])
    assert retention.pairs([e.id])[e.id] == [("What did I tell you about my dog?", "Your dog is called Pimento.", True)]


def test_latest_scores_held_by_and_ages(parts):
    store, versions, retention = parts
    a, b = store.add_experiences(["A is 1.", "B is 2."], "taught", "u")
    pa = retention.add_probes(a.id, [("What is A?", ["1"], "recall")], "given")[0]
    pb = retention.add_probes(b.id, [("What is B?", ["2"], "recall")], "given")[0]
    v1 = _version(versions)
    run1 = retention.start_run("m", "base")
    retention.record_trained(run1, {a.id: "new"})
    retention.record_results(run1, v1, [(pa.id, "1", 1.0, 1.0)])
    retention.finish_run(run1, v1, True, {})
    v2 = _version(versions, v1)
    run2 = retention.start_run("m", v1)
    retention.record_trained(run2, {a.id: "rehearsed", b.id: "new"})
    retention.record_results(run2, v2, [(pa.id, "0", 0.0, 0.0), (pb.id, "2", 1.0, 0.5)])
    retention.finish_run(run2, v2, False, {})

    assert retention.latest_scores(v1) == {a.id: 1.0}
    assert retention.held_by(v1) == {a.id} and retention.held_by(v2) == {b.id}
    assert retention.trained_experiences("m") == {a.id: run1, b.id: run1 + 1}
    report = retention.report("m")
    ages = {(p["experience_id"], p["run_id"]): (p["age"], p["promoted"]) for p in report["points"]}
    assert ages == {(a.id, run1): (0, True), (a.id, run2): (1, False), (b.id, run2): (0, False)}
    # The curves count promoted versions only: run 2 was refused.
    assert report["by_age"] == [{"age": 0, "experiences": 1, "contains": 1.0, "f1": 1.0}]


def test_general_figures_are_kept_per_version(parts):
    _, _, retention = parts
    assert retention.general("base") is None
    retention.set_general("base", {"general_contains": 0.5, "perplexity": 20.0})
    assert retention.general("base") == {"general_contains": 0.5, "perplexity": 20.0}


def test_what_a_version_holds_follows_its_latest_scores(parts):
    # Recall asks this every turn and the answer is remembered; a new score must replace it.
    store, versions, retention = parts
    (a,) = store.add_experiences(["A is 1."], "taught", "u")
    probe = retention.add_probes(a.id, [("What is A?", ["1"], "recall")], "given")[0]
    v1 = _version(versions)
    assert retention.held_by(v1) == set()
    retention.record_results(retention.start_run("m", "base"), v1, [(probe.id, "1", 1.0, 1.0)])
    assert retention.held_by(v1) == {a.id}
    retention.record_results(retention.start_run("m", "base"), v1, [(probe.id, "2", 0.0, 0.0)])
    assert retention.held_by(v1) == set()
