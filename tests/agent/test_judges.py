"""The judge card and the modes it sets: thresholds on planted cards, cleaning that only audits
below its threshold, and a card measured for real (on the tiny model, with a smaller measuring
set) at the first night, cached and refreshed."""

import json
from importlib import resources

import pytest

from agent import Agent
from agent.judges import Card, load_card, modes
from agent.settings import load_settings
from graphs.committee import CallableMember
from graphs.verify import card as card_module
from tests.conftest import CHANCE


def planted(committee=0.62, tau=-0.2, s_neg=0.02) -> Card:
    figures = json.loads(json.dumps(CHANCE))
    figures["committee"] |= {"accuracy": committee, "members": []}
    figures["codejudge"]["binary"]["kendall_tau"] = tau
    figures["comparator"]["calibrated"]["s_neg"] = s_neg
    return Card(model="m", measured_at="2026-11-30T00:00:00+00:00", data="x", figures=figures)


@pytest.mark.parametrize("accuracy, mode", [(0.79, "audit"), (0.8, "clean")])
def test_the_committee_cleans_only_from_its_threshold(home, accuracy, mode):
    found = modes(load_settings(home), planted(committee=accuracy))
    assert found.cleaning.value == mode and found.cleaning.trusted == (mode == "clean")
    assert f"{accuracy:.2f} of 24 labelled pairs" in found.cleaning.reason


@pytest.mark.parametrize("tau, auto, by_hand_trusted", [(0.29, "off", False), (0.3, "binary", True)])
def test_the_code_check_runs_from_its_threshold_and_by_hand_only_as_unreliable(home, tau, auto, by_hand_trusted):
    assert modes(load_settings(home), planted(tau=tau)).code_check.value == auto
    by_hand = modes(load_settings(home, verify_code="binary"), planted(tau=tau)).code_check
    assert (by_hand.value, by_hand.trusted) == ("binary", by_hand_trusted)
    if not by_hand_trusted:
        assert "unreliable" in by_hand.reason and "tau-b +0.29" in by_hand.reason
    assert modes(load_settings(home, verify_code="off"), planted(tau=0.9)).code_check.value == "off"


@pytest.mark.parametrize("s_neg, auto", [(0.79, "unavailable"), (0.8, "on")])
def test_the_choice_check_runs_from_its_threshold(home, s_neg, auto):
    assert modes(load_settings(home), planted(s_neg=s_neg)).choice_check.value == auto
    assert modes(load_settings(home, verify_choices=True), planted(s_neg=s_neg)).choice_check.value == "on"
    assert modes(load_settings(home, verify_choices="off"), planted(s_neg=s_neg)).choice_check.value == "off"


def test_without_a_card_nothing_is_trusted(home):
    found = modes(load_settings(home), None)
    assert found.card is None
    assert (found.cleaning.value, found.code_check.value, found.choice_check.value) == ("audit", "off", "unavailable")
    assert "no card yet" in found.cleaning.reason


def test_the_thresholds_are_settings(home):
    lenient = load_settings(home, judges={"min_committee_accuracy": 0.0, "min_code_tau": -1.0, "min_negation": 0.0})
    found = modes(lenient, planted())
    assert (found.cleaning.value, found.code_check.value, found.choice_check.value) == ("clean", "binary", "on")


def prefs():
    return card_module.rows("preferences.jsonl")


def committee(knows_better: bool, size: int = 3):
    """Scripted members (no model): they prefer the truly better answer of each shipped pair and
    judge it good, or (a committee below chance) prefer the worse one and judge every answer bad."""
    better = {p["response_a" if p["true_label"] == "a" else "response_b"] for p in card_module.clear_pairs(prefs())}

    def score(prompt, answer):
        return float((answer in better) == knows_better)

    def good(prompt, answer):
        return knows_better and answer in better

    return [CallableMember(f"{'oracle' if knows_better else 'contrarian'}-{i}", score, good) for i in range(size)]


def test_an_explicit_thumb_survives_a_committee_below_the_threshold(tiny_agent):
    reply = tiny_agent.chat("My brother Teodor works in Port Halvik.")
    thumb = tiny_agent.feedback(reply.turn_id, "up")
    report = tiny_agent.clean_feedback("sac", members=committee(knows_better=False))
    assert report.mode == "audit" and "0.00 of 24 labelled pairs" in report.mode_reason
    [item] = report.items
    assert (item["feedback_id"], item["proposed"], item["action"]) == (thumb.id, "flip", "keep")
    assert report.counts == {"keep": 1, "flip": 0, "remove": 0} and report.proposed["flip"] == 1
    # The audit stays: every vote and the reason are recorded with the view.
    [decision] = tiny_agent.show_feedback(thumb.id)["decisions"]
    assert decision["proposed"] == "flip" and decision["action"] == "keep" and len(decision["votes"]) == 3


def test_a_reliable_committee_still_flips_a_planted_flip(tiny_agent):
    pair = next(p for p in prefs() if p["planted_flip"])
    a, b = pair["response_a"], pair["response_b"]
    chosen, rejected = (a, b) if pair["noisy_label"] == "a" else (b, a)
    tiny_agent.import_feedback([json.dumps({"prompt": pair["prompt"], "chosen": chosen, "rejected": rejected})])
    report = tiny_agent.clean_feedback("sac", members=committee(knows_better=True))
    assert report.mode == "clean" and report.counts["flip"] == 1
    [row] = tiny_agent.export_feedback(cleaned=True)
    assert row["chosen"][-1]["content"] == rejected  # the cleaned view holds the true order


def test_changing_the_mode_rewrites_the_view_from_the_same_proposals(home, tiny_dir):
    with Agent.open(home, model=str(tiny_dir), max_new_tokens=4) as bot:
        reply = bot.chat("My brother Teodor works in Port Halvik.")
        bot.feedback(reply.turn_id, "up")
        contrarians = committee(knows_better=False)
        assert bot.clean_feedback("sac", members=contrarians).counts["flip"] == 0
    with Agent.open(home, model=str(tiny_dir), max_new_tokens=4, judges={"min_committee_accuracy": 0.0}) as bot:
        report = bot.clean_feedback("sac", members=contrarians)
        assert report.mode == "clean" and report.counts["flip"] == 1 and report.judged == 0  # nothing judged again


@pytest.fixture
def small_card_data(tmp_path, monkeypatch):
    """The shipped measuring sets cut to a few items each, so that the tiny model measures in seconds."""
    folder = tmp_path / "card_data"
    folder.mkdir()
    keep = {"codejudge.jsonl": 2, "consistency.jsonl": 1, "preferences.jsonl": 6, "facts.jsonl": 2}
    for name, n in keep.items():
        lines = (card_module.DATA / name).read_text().splitlines()
        if name == "codejudge.jsonl":  # short programs: a passed and a failed one
            rows = sorted((json.loads(line) for line in lines), key=lambda r: len(r["code"]))
            lines = [json.dumps(next(r for r in rows if r["passed"] is p)) for p in (True, False)]
        if name == "consistency.jsonl":  # a set of three items
            one = json.loads(lines[0])
            lines = [json.dumps({**one, "items": one["items"][:3], "true_order": [i for i in one["true_order"] if i < 3]})]
        (folder / name).write_text("\n".join(lines[:n]) + "\n")
    monkeypatch.setattr(card_module, "DATA", folder)
    card_module.data_version.cache_clear()
    yield folder
    card_module.data_version.cache_clear()


def test_the_first_night_measures_the_card_then_it_is_cached_and_refreshed(tmp_path, home, tiny_dir, small_card_data,
                                                                        monkeypatch):
    measured = []
    real = card_module.measure
    monkeypatch.setattr(card_module, "measure", lambda *a: measured.append(1) or real(*a))  # a counting spy
    settings = dict(model=str(tiny_dir), models_dir=tmp_path / "models", max_new_tokens=4,
                    selfparam={"epochs": 1}, synthesis={"samples": 1}, judges={"min_code_tau": -1.0})
    with Agent.open(home, **settings) as bot:
        assert bot.judge_modes().card is None  # a chat turn never measures
        bot.chat("Hello there")
        assert measured == []
        bot.teach("My brother Teodor works in Port Halvik.")
        report = bot.learn()
        assert measured == [1] and report.judges["card"] is not None
        card = load_card(bot.settings)
        assert card.figures["codejudge"]["binary"]["items"] == 2 and card.figures["committee"]["pairs"] == 6
        assert set(card.figures) == {"codejudge", "comparator", "committee", "qa", "seconds"}
        assert bot.judge_modes().card == card.measured_at
        bot.teach("His greyhound is called Pimento.")
        bot.learn()
        assert measured == [1]  # cached
        assert bot.card() == card and measured == [1]
        bot.card(refresh=True)
        assert measured == [1, 1]
    # Other measuring data (or judge prompts) make a card stale: the next use measures again.
    (small_card_data / "facts.jsonl").write_text((small_card_data / "facts.jsonl").read_text().splitlines()[0] + "\n")
    card_module.data_version.cache_clear()
    with Agent.open(home, **settings) as bot:
        assert bot.judge_modes().card is None


def test_the_measuring_sets_ship_inside_the_package():
    shipped = resources.files("graphs.verify") / "card_data"
    for name in card_module.FILES:
        rows = [json.loads(line) for line in (shipped / name).read_text(encoding="utf-8").splitlines()]
        assert rows, name
    assert (shipped / "README.md").is_file()
    code = card_module.rows("codejudge.jsonl")
    assert len(code) == 12 and sum(r["passed"] for r in code) == 6
    assert len(card_module.clear_pairs(prefs())) == 24


def test_a_turn_waits_for_no_judge_the_card_does_not_trust(home, tiny_dir):
    from agent.chat import chat_context
    from graphs.verify.nodes import ChoiceCheck, CodeCheck

    with Agent.open(home, model=str(tiny_dir)) as bot:  # the planted card: judges at chance
        [choice] = chat_context(bot).verifiers
        assert isinstance(choice, ChoiceCheck) and "s_neg 0.02" in choice.unavailable
    with Agent.open(home, model=str(tiny_dir), verify_code="graded", verify_choices="off") as bot:
        [code] = chat_context(bot).verifiers
        assert isinstance(code, CodeCheck) and code.mode == "graded" and "no valid verdicts" in code.unreliable
