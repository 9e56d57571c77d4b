"""How far the judges of a model can be trusted: its card (``graphs.verify.card`` measures it),
cached beside the converted models, and the modes it sets.

  cleaning      clean (the committee may flip and remove feedback) when the committee prefers
                the truly better answer on at least ``judges.min_committee_accuracy`` of the
                card's labelled pairs; else audit (every vote, bin and reason is recorded, and
                every label stays as it was given). Set the threshold to 0 to trust any committee.
  code check    ``verify_code`` auto: binary when CodeJudge's tau-b reaches ``judges.min_code_tau``,
                else off (nobody waits for a verdict that carries no information). Set to binary
                or graded by hand below it: the verdict is shown as unreliable and never replaces
                an answer.
  choice check  ``verify_choices`` auto: on when the comparator's negation invariance (calibrated
                s_neg) reaches ``judges.min_negation``, else unavailable (said, not computed).

No card yet (never measured, or measured on other data or judge prompts) means untrusted: the
first night measures one, before it cleans anything; so does ``reverie models card``. A chat turn
never measures.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from learners.training import NullProgress, Progress

if TYPE_CHECKING:
    from agent.facade import Agent
    from agent.settings import Settings


class Card(BaseModel):
    """One model's measured judges (``reverie models card --json`` prints it)."""

    model_config = ConfigDict(frozen=True)

    model: str  # the model spec it was measured on
    measured_at: str
    data: str  # the measuring sets and judge prompts: a card on other ones is stale
    figures: dict[str, Any]  # codejudge, comparator, committee, qa, seconds (graphs.verify.card)


class Mode(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: str
    trusted: bool  # the card says the judge behind this mode can tell
    reason: str


class Modes(BaseModel):
    """What the judges do on this model, and why (``reverie config show``, ``status``, the learn report)."""

    model_config = ConfigDict(frozen=True)

    card: str | None  # when the card was measured; None: not yet
    cleaning: Mode
    code_check: Mode
    choice_check: Mode


def card_path(models_path: Path, model: str) -> Path:
    """Cards live beside the converted models (HOME/models by default): one per model spec."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_")[-60:]
    return models_path / "cards" / f"{slug}-{hashlib.sha256(model.encode()).hexdigest()[:8]}.json"


def load_card(settings: Settings, model: str | None = None) -> Card | None:
    """The cached card of ``model`` (default: the configured one), unless missing or stale."""
    from graphs.verify.card import data_version

    path = card_path(settings.models_path, model or settings.model)
    try:
        card = Card.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return card if card.data == data_version() else None


def measure(agent: Agent, model: str | None, progress: Progress | None) -> Card:
    """Measure ``model``'s card (default: the configured model) and cache it; on the model thread."""
    from agent import feedback
    from agent.llm import load_backend
    from graphs.verify.card import data_version
    from graphs.verify.card import measure as measure_figures

    s, model = agent.settings, model or agent.settings.model
    backend = agent.backend if model == s.model else load_backend(model, models_dir=s.models_path, device=s.device)
    # The judges ask without an adapter: the base's weights, whatever a night promoted since.
    figures = measure_figures(backend, feedback.committee(agent, backend=backend), s.system_prompt,
                              progress or NullProgress())
    card = Card(model=model, measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                data=data_version(), figures=figures)
    save_card(card, card_path(s.models_path, model))
    return card


def save_card(card: Card, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(card.model_dump(), indent=1), encoding="utf-8")
    tmp.replace(path)


def modes(settings: Settings, card: Card | None, committee: dict[str, Any] | None = None) -> Modes:
    """The modes ``card`` sets under ``settings``; ``committee`` overrides the card's committee
    figures (a committee other than the configured one, measured on the same pairs)."""
    j = settings.judges
    missing = f"no card yet for {settings.model} (the first night measures one, or `reverie models card`)"
    figures = card.figures if card else {}

    members = committee or figures.get("committee")
    if members is None:
        cleaning = Mode(value="audit", trusted=False, reason=f"{missing}: labels stay as given")
    else:
        accuracy, trusted = members["accuracy"], members["accuracy"] >= j.min_committee_accuracy
        said = f"the committee prefers the better answer on {accuracy:.2f} of {members['pairs']} labelled pairs"
        cleaning = Mode(value="clean" if trusted else "audit", trusted=trusted,
                        reason=f"{said} (>= judges.min_committee_accuracy {j.min_committee_accuracy:.2f}): it may "
                               "flip and remove" if trusted else f"{said} (< {j.min_committee_accuracy:.2f}): votes "
                               "are recorded, labels stay as given")

    mode = "binary" if settings.verify_code == "auto" else settings.verify_code
    tau = figures.get("codejudge", {}).get(mode, {}).get("kendall_tau") if mode != "off" else None
    judged = (missing if card is None else f"CodeJudge {mode} tau-b {tau:+.2f}" if tau is not None
              else f"CodeJudge {mode} gave no valid verdicts on the card's programs")
    trusted = tau is not None and tau >= j.min_code_tau
    if settings.verify_code == "off":
        code = Mode(value="off", trusted=False, reason="verify_code = off")
    elif trusted:
        code = Mode(value=mode, trusted=True, reason=f"{judged} >= judges.min_code_tau {j.min_code_tau:.2f}")
    elif settings.verify_code == "auto":
        code = Mode(value="off", trusted=False, reason=f"{judged}, below judges.min_code_tau {j.min_code_tau:.2f}: "
                                                       "its verdict would carry no information")
    else:
        code = Mode(value=mode, trusted=False, reason=f"set by hand, but {judged}: shown as an unreliable judge, "
                                                      "never replaces an answer")

    s_neg = figures.get("comparator", {}).get("calibrated", {}).get("s_neg")
    judged = (missing if card is None else f"comparator s_neg {s_neg:.2f}" if s_neg is not None
              else "the comparator's negation invariance is undefined on the card's sets")
    trusted = s_neg is not None and s_neg >= j.min_negation
    if settings.verify_choices == "off":
        choice = Mode(value="off", trusted=False, reason="verify_choices = off")
    elif trusted or settings.verify_choices == "on":
        choice = Mode(value="on", trusted=trusted, reason=f"{judged} {'>=' if trusted else '<'} judges.min_negation "
                                                          f"{j.min_negation:.2f}" + ("" if trusted else ", set by hand"))
    else:
        choice = Mode(value="unavailable", trusted=False,
                      reason=f"{judged}, below judges.min_negation {j.min_negation:.2f}: the check is unavailable "
                             "for this model")
    return Modes(card=card.measured_at if card else None, cleaning=cleaning, code_check=code, choice_check=choice)


def cleaning_mode(agent: Agent, committee, progress: Progress | None = None) -> Mode:
    """Whether ``committee`` may change labels: from the card when it measured these members,
    else measured now on the card's labelled pairs (on the model thread; votes are cached)."""
    from graphs.verify.card import clear_pairs, committee_accuracy, rows

    card = load_card(agent.settings)
    if card is not None and card.figures.get("committee", {}).get("members") == committee.keys:
        return modes(agent.settings, card).cleaning
    advance = (progress or NullProgress()).phase("measuring the committee on labelled pairs",
                                                  len(clear_pairs(rows("preferences.jsonl"))))
    return modes(agent.settings, card, committee=committee_accuracy(committee, on_item=advance)).cleaning


# -- the judges on their own (`reverie judge`): on the model thread, inputs checked before the model loads


def judge_code(agent: Agent, problem: str, code: str, language: str | None, reference: str | None, examples: str,
               mode: str, samples: int):
    from graphs.verify.codejudge import CodeTask, JudgeConfig, language_name
    from graphs.verify.codejudge import judge_code as judge

    task = CodeTask(problem, code, language_name(language) if language else None, examples, reference)
    return judge(agent.backend, task, mode, JudgeConfig(samples=samples))


def rank(agent: Agent, instruction: str, items: list[str], negated_instruction: str | None, k: int, on_pair):
    from graphs.verify.consistency import rank as ranked

    return ranked(agent.backend, instruction, items, negated_instruction=negated_instruction, k=k, on_pair=on_pair)


def consistency(agent: Agent, sets: list, k: int, on_pair) -> dict[str, Any]:
    from graphs.verify.consistency import ConsistencySet, check_sets

    sets = [s if isinstance(s, ConsistencySet) else ConsistencySet.model_validate(s) for s in sets]
    return check_sets(agent.backend, sets, k, on_pair)
