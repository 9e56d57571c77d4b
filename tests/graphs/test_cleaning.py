"""Cleaning the feedback log end to end (real SQLite) with a scripted committee that knows the
truth of the shared preference set: checks the rules' outcome, the audit trail, that raw
feedback is untouched, idempotent re-runs and incremental cleaning."""

import json
import sqlite3

import pytest

from agent import Agent
from graphs.committee import CallableMember

DATA = "preferences/prefs_dev.jsonl"


@pytest.fixture
def prefs(shared_data):
    return [json.loads(line) for line in (shared_data / DATA).read_text().splitlines()]


def as_trl(row):
    """A noisy pair as TRL JSONL: chosen is what the (possibly flipped) human label chose."""
    a, b = row["response_a"], row["response_b"]
    chosen, rejected = (a, b) if row["noisy_label"] == "a" else (b, a)
    return json.dumps({"prompt": row["prompt"], "chosen": chosen, "rejected": rejected, "source": row["source"]})


def scripted_committee(prefs):
    """Three members that know which answer is truly better; on subjective pairs they split; on
    both-bad pairs they judge both answers bad. Scripted: it checks the rules, not a model."""
    better = {r["response_a" if r["true_label"] == "a" else "response_b"] for r in prefs if not r["subjective"]}
    taste_a = {r["response_a"] for r in prefs if r["subjective"]}
    taste_b = {r["response_b"] for r in prefs if r["subjective"]}
    bad = {r[k] for r in prefs if r["both_bad"] for k in ("response_a", "response_b")}

    def member(i):
        def score(prompt, answer):
            if answer in taste_a | taste_b:  # a matter of taste: members 0 and 1 like a, 2 and 3 like b
                return 1.0 if (answer in taste_a) == (i < 2) else 0.0
            return 1.0 if answer in better else 0.0
        return CallableMember(f"oracle-{i}", score, lambda p, a: a not in bad)

    return [member(i) for i in range(4)]


def test_sac_flips_the_planted_flips_removes_both_bad_and_keeps_the_rest(home, prefs):
    with Agent.open(home) as bot:
        imported = bot.import_feedback([as_trl(r) for r in prefs])
        assert [i["line"] for i in imported["imported"]] == list(range(1, 31)) and imported["errors"] == []
        raw_before = bot.list_feedback()
        report = bot.clean_feedback("sac", members=scripted_committee(prefs))

        by_id = {i["feedback_id"]: i for i in report.items}
        ids = {r["id"]: imported["imported"][n]["feedback_id"] for n, r in enumerate(prefs)}
        for r in prefs:
            item = by_id[ids[r["id"]]]
            expected = "remove" if r["both_bad"] else "flip" if r["planted_flip"] else "keep"
            assert item["action"] == expected, (r["id"], item["reason"])
            assert item["source"] == r["source"] and set(item["votes"]) == {f"callable:oracle-{i}" for i in range(4)}
        assert report.counts == {"keep": 21, "flip": 6, "remove": 3}
        assert report.by_category["subjective or differing criteria"] == {"keep": 3}

        # The raw log is untouched, and SQLite refuses to change it at all.
        assert bot.list_feedback() == raw_before
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            bot.store.db.execute("UPDATE feedback SET payload = NULL")

        # The cleaned view: flips applied, removals gone, in TRL's format.
        cleaned = bot.export_feedback(cleaned=True)
        assert len(cleaned) == 27 and len(bot.export_feedback()) == 30
        truth = {r["prompt"]: r["response_a" if r["true_label"] == "a" else "response_b"] for r in prefs
                 if not r["subjective"] and not r["both_bad"]}
        assert all(row["chosen"][0]["content"] == truth[row["prompt"][0]["content"]]
                   for row in cleaned if row["prompt"][0]["content"] in truth)
        assert bot.show_feedback(ids["prefs-dev-01"])["decisions"][0]["action"] == "flip"


def test_reruns_are_idempotent_incremental_and_cached(home, prefs):
    committee = scripted_committee(prefs)
    with Agent.open(home) as bot:
        bot.import_feedback([as_trl(r) for r in prefs[:10]])
        first = bot.clean_feedback("sac", members=committee)
        # Measuring the committee first (on the same shipped pairs, in their true order) already
        # judged the clear pairs whose label is right: cached, they cost nothing again.
        fresh = sum(r["subjective"] or r["both_bad"] or r["planted_flip"] for r in prefs[:10])
        assert (first.run_id, first.mode, first.judged, first.member_calls) == (1, "clean", 10, 4 * fresh)
        again = bot.clean_feedback("sac", members=committee)
        assert (again.up_to_date, again.run_id, again.judged, again.member_calls) == (True, 1, 0, 0)
        assert again.items == first.items

        bot.import_feedback([as_trl(r) for r in prefs[10:12]])
        dry = bot.clean_feedback("sac", members=committee, dry_run=True)
        assert (dry.run_id, dry.judged, dry.reused) == (None, 2, 10)
        more = bot.clean_feedback("sac", members=committee)
        assert (more.run_id, more.judged, more.reused, more.member_calls) == (2, 2, 10, 0)  # the dry run filled the cache
        assert [i for i in more.items if i["feedback_id"] <= 10] == first.items

        other = bot.clean_feedback("vote_maj_r", members=committee)  # another method: a view of its own, all cached
        assert (other.run_id, other.judged, other.member_calls) == (3, 12, 0)
        assert len(bot.export_feedback(cleaned=True)) == 12 - other.counts["remove"]  # the newest view: vote_maj_r


def test_thumbs_are_cleaned_against_the_answer_they_rate(home, tiny_dir):
    always_bad = CallableMember("critic", lambda p, a: None, lambda p, a: False)
    # The critic cannot rank pairs, so its measured accuracy is 0: trusted here by setting, to check the rule.
    with Agent.open(home, model=str(tiny_dir), max_new_tokens=4, verify_choices=False,
                    judges={"min_committee_accuracy": 0.0}) as bot:
        reply = bot.chat("Hello there")
        up = bot.feedback(reply.turn_id, "up")
        down = bot.feedback(reply.turn_id, "down")
        bot.feedback(reply.turn_id, "comment", text="odd answer")  # comments are kept, never judged
        report = bot.clean_feedback("vote_all_f", members=[always_bad])
    actions = {i["feedback_id"]: i["action"] for i in report.items}
    assert actions == {up.id: "flip", down.id: "keep"}
