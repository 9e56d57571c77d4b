"""Feedback on the assistant's turns: the rules for what may be recorded, import and export of
preference data sets, and cleaning by the committee (Source-Aware Cleaning, ``graphs.cleaning``).

Raw feedback is append-only. Cleaning never edits it: it writes a new version of the cleaned
view, and learners read only that view.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agent.errors import InvalidInput
from agent.inputs import experience, has_nul, required
from agent.judges import cleaning_mode
from learners.training import Progress
from memory.records import Feedback, FeedbackKind

if TYPE_CHECKING:
    from agent.facade import Agent


def record(agent: Agent, turn_id: int, kind: FeedbackKind, text: str | None, payload: dict[str, Any] | None,
           user: str | None) -> Feedback:
    """Check feedback on an assistant turn, then record it (see ``Agent.feedback`` for the kinds)."""
    turn = agent.store.get_turn(turn_id)
    if turn.role != "assistant":
        raise InvalidInput(f"turn {turn_id} is the user's; feedback goes on the assistant's turns")
    user = required(user, "user") if user is not None else turn.user
    payload = dict(payload or {})
    if text is not None:
        payload["text"] = required(text, "feedback text")
    if kind in ("correction", "comment") and "text" not in payload:
        raise InvalidInput(f"a {kind} needs its text")
    if kind == "correction":  # also remembered as an experience: the same rule as teaching
        experience(payload["text"])
    if kind == "preference":
        if "better" in payload:
            if not turn.content.strip():
                raise InvalidInput(f"turn {turn_id} has no answer text to prefer another answer over")
            payload = {"chosen": required(payload.pop("better"), "better answer"), "rejected": turn.content, **payload}
        if not all(isinstance(payload.get(k), str) and payload[k].strip() for k in ("chosen", "rejected")):
            raise InvalidInput("a preference needs two answers: payload={'chosen': ..., 'rejected': ...}")
    return agent.on_model_thread(_write, agent, turn_id, kind, user, payload or None)


def _write(agent: Agent, turn_id: int, kind: FeedbackKind, user: str, payload: dict | None) -> Feedback:
    with agent.store.transaction():  # a correction is feedback and an experience, or neither
        recorded = agent.store.record_feedback(turn_id, kind, user, payload)
        if kind == "correction":
            agent.store.add_experiences([payload["text"]], "correction", user, turn_id=turn_id)
    return recorded


def import_lines(agent: Agent, lines: list[str], fmt: str, user: str, source: str | None) -> dict[str, Any]:
    """Import a preference data set; bad lines are reported by number, the rest kept."""
    from memory.preference_formats import read_preferences

    user = required(user, "user")
    good, bad = read_preferences(lines, fmt)
    # The rule every entry point applies: no NUL bytes in anything stored.
    refused = [(n, "a text contains a NUL byte") for n, pref in good if has_nul(pref.payload())]
    good = [(n, pref) for n, pref in good if n not in {r[0] for r in refused}]
    bad = sorted([*bad, *refused])
    rows = [(None, "preference", user, pref.payload(), pref.source or source or "import") for _, pref in good]
    written = agent.store.record_feedback_many(rows) if rows else []
    return {"imported": [{"line": n, "feedback_id": f.id} for (n, _), f in zip(good, written)],
            "errors": [{"line": n, "reason": reason} for n, reason in bad]}


def show(agent: Agent, feedback_id: int) -> dict[str, Any]:
    """One piece of feedback as given, with every cleaning decision about it (newest last)."""
    from memory.cleaning import Cleaning

    raw = agent.store.get_feedback(feedback_id)
    cleaning = Cleaning(agent.store)
    decisions = [{"run_id": run["id"], "method": run["method"], **d}
                 for run in cleaning.runs() for d in cleaning.decisions(run["id"]) if d["feedback_id"] == feedback_id]
    return {"feedback": raw, "decisions": decisions}


def committee(agent: Agent, members: list | None = None, backend=None):
    """The cleaning committee: ``members`` (objects with ``key`` and ``judge``), else the settings'.
    Model judges are built over ``backend`` (default: the agent's), so call this on the model thread."""
    from graphs.committee import CodeJudgeMember, Committee, ModelJudge, RewardModel
    from memory.cleaning import Cleaning

    if members is None:
        members = []
        for spec in agent.settings.clean_committee:
            kind, _, arg = spec.partition(":")
            if kind == "judge":
                members.append(ModelJudge(backend or agent.backend, arg))
            elif kind == "codejudge":
                members.append(CodeJudgeMember(backend or agent.backend))
            elif kind == "rm" and arg:
                members.append(RewardModel(arg, device="cuda" if agent.settings.device.startswith("cuda") else "cpu"))
            else:
                raise InvalidInput(f"unknown committee member {spec!r}; use judge:CRITERION, codejudge or rm:MODEL")
    if not members:
        raise InvalidInput("the committee has no members")
    return Committee(members, Cleaning(agent.store))


def clean(agent: Agent, method: str, dry_run: bool, members: list | None, on_item: Callable[[], None] | None,
          progress: Progress | None = None):
    """Clean the feedback log into a new version of the cleaned view, in the mode the committee's
    measured accuracy allows (``agent.judges``); returns a ``CleaningReport``."""
    from graphs.cleaning import check_method
    from graphs.cleaning import clean as run_cleaning

    check_method(method)

    def run():
        judges = committee(agent, members)
        mode = cleaning_mode(agent, judges, progress)
        return run_cleaning(agent.store, judges, method, mode=mode.value, mode_reason=mode.reason, dry_run=dry_run,
                            on_item=on_item)

    return agent.on_model_thread(run)


def pending(agent: Agent, method: str, members: list | None) -> int:
    """Feedback items the next cleaning run would judge."""
    from graphs.cleaning import check_method
    from graphs.cleaning import pending as count_pending

    check_method(method)

    keys = [m.key for m in members] if members is not None else agent.on_model_thread(committee, agent).keys
    return count_pending(agent.store, method, keys)


def export(agent: Agent, cleaned: bool, run_id: int | None, repaired: bool) -> list[dict[str, Any]]:
    """Preference pairs as TRL conversational rows: raw, or the cleaned view's; with ``repaired``,
    each prompt's pairs made transitive and complete by REPAIR's win-loss ranking."""
    from graphs.cleaning import cleaned_preferences, items_from
    from memory.preference_formats import to_trl

    if cleaned:
        rows = cleaned_preferences(agent.store, run_id)
    else:
        preferences = [f for f in agent.store.list_feedback() if f.kind == "preference"]
        rows = [{"prompt": i.prompt, "chosen": i.answers[0], "rejected": i.answers[1]}
                for i in items_from(agent.store, preferences)]
    if repaired:
        rows = _repaired(rows)
    return [to_trl(r["prompt"], r["chosen"], r["rejected"]) for r in rows]


def _repaired(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """REPAIR (arXiv 2410.02205) per prompt: the answers ranked by win-loss rate over the given
    pairs, then every (better, worse) pair of that order, so A > B and B > C also give A > C and
    a cycle of noisy labels becomes one order. Swapped and negated copies, which a judge trained
    on option letters needs, mean nothing to chosen/rejected rows and are left out."""
    from learners.repair import repair

    by_prompt: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_prompt.setdefault(json.dumps(row["prompt"], sort_keys=True), []).append(row)
    out = []
    for group in by_prompt.values():
        answers = list(dict.fromkeys(a for r in group for a in (r["chosen"], r["rejected"])))
        fixed = repair(answers, [(r["chosen"], r["rejected"]) for r in group], negate=False)
        out += [{"prompt": group[0]["prompt"], "chosen": p.first, "rejected": p.second}
                for p in fixed.pairs if p.answer == "first"]
    return out
