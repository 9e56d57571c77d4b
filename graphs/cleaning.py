"""Cleaning the feedback log: turn feedback into items, let the committee vote (cached), decide
with SAC or a voting cleaner (learners/sac.py), and write the decisions as a new version of the
cleaned view (memory/cleaning.py). Learners read ``cleaned_preferences``, never raw feedback.

Incremental and idempotent: a run reuses the decisions of the newest run with the same method
and committee and judges only feedback that came after it; with nothing new (and the same mode)
it writes nothing.

Two modes (``agent.judges`` chooses from the committee's measured accuracy): ``clean`` applies
the committee's flips and removals; ``audit`` records every vote, bin, reason and the action the
committee proposed, and keeps every label as it was given.
Thumbs and preferences are judged; corrections (already experiences) and comments are not.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from agent.errors import InvalidInput
from graphs.committee import Committee, Item
from learners.sac import METHODS, Bins, decide
from memory.cleaning import Cleaning
from memory.records import Feedback
from memory.store import Store

JUDGED_KINDS = ("up", "down", "preference")


class CleaningReport(BaseModel):
    """What `feedback clean` returns and `--json` prints."""

    model_config = ConfigDict(frozen=True)

    run_id: int | None  # the view's version; None for a dry run
    method: str
    mode: str  # clean: the committee's actions applied; audit: proposed and recorded, labels kept
    mode_reason: str
    committee: list[str]
    dry_run: bool
    up_to_date: bool  # nothing new since the last run of this method and committee: nothing written
    judged: int  # items the committee voted on in this run
    reused: int  # decisions carried over from the previous view
    member_calls: int  # member judgements computed (the rest came from the cache)
    counts: dict[str, int]  # keep / flip / remove, as applied
    proposed: dict[str, int]  # keep / flip / remove, as the committee proposed (differs only when auditing)
    by_category: dict[str, dict[str, int]]  # SAC's source of unreliability -> action -> count
    by_source: dict[str, dict[str, int]]  # who gave the feedback (user, rater ...) -> action -> count
    items: list[dict[str, Any]]  # per feedback id: kind, source, action, bin, category, reason, votes


def items_from(store: Store, feedback: list[Feedback]) -> list[Item]:
    """The judgeable feedback as committee items: preferences and thumbs, with their prompts."""
    items = []
    for f in feedback:
        if f.kind == "preference":
            payload = f.payload or {}
            prompt = payload.get("prompt") or _prompt_before(store, f.turn_id)
            if not prompt or not payload.get("chosen") or not payload.get("rejected"):
                continue  # an old free-form preference without both answers cannot be judged
            items.append(Item(f.id, "preference", prompt, [payload["chosen"], payload["rejected"]], "chosen-first", f.source))
        elif f.kind in ("up", "down"):
            items.append(Item(f.id, "thumb", _prompt_before(store, f.turn_id), [store.get_turn(f.turn_id).content],
                              f.kind, f.source))
    return items


def _prompt_before(store: Store, turn_id: int | None) -> list[dict[str, str]]:
    """The user's message that an assistant turn answered."""
    if turn_id is None:
        return []
    turn = store.get_turn(turn_id)
    said = [t for t in store.list_turns(thread_id=turn.thread_id) if t.id < turn_id and t.role == "user"]
    return [{"role": "user", "content": said[-1].content}] if said else []


def check_method(method: str) -> None:
    if method not in METHODS:
        raise InvalidInput(f"unknown cleaning method {method!r}; use one of {', '.join(METHODS)}")


def clean(store: Store, committee: Committee, method: str = "sac", *, mode: str = "clean", mode_reason: str = "",
          bins: Bins = Bins(), dry_run: bool = False, on_item: Callable[[], None] | None = None) -> CleaningReport:
    check_method(method)
    if mode not in ("clean", "audit"):
        raise InvalidInput(f"unknown cleaning mode {mode!r}; use clean or audit")
    cleaning, feedback, calls = Cleaning(store), store.list_feedback(), committee.judged_now
    upto = max((f.id for f in feedback), default=0)
    previous, reused = _previous(cleaning, method, committee.keys)
    reused = {i: _applied(d, mode) for i, d in reused.items()}  # a proposal stands; whether it applies may change
    kinds = {f.id: (f.kind, f.source) for f in feedback}
    if previous and previous["upto_feedback_id"] == upto and previous["mode"] == mode:
        return _report(previous["id"], method, (mode, mode_reason), committee.keys, 0, dry_run, True, [],
                       list(reused.values()), kinds)
    fresh = []
    for item in items_from(store, [f for f in feedback if f.id not in reused and f.kind in JUDGED_KINDS]):
        votes, detail = committee.vote(item)
        decision = decide(method, votes, bins)
        fresh.append(_applied({"feedback_id": item.feedback_id, "proposed": decision.action, "bin": decision.bin,
                               "category": decision.category, "reason": decision.reason,
                               "votes": {key: {**detail[key], "agrees": agree}
                                         for key, agree in zip(committee.keys, votes.agree)}}, mode))
        if on_item is not None:
            on_item()
    decisions = sorted([*reused.values(), *fresh], key=lambda d: d["feedback_id"])
    run_id = None if dry_run else cleaning.record_run(method, committee.keys, upto, decisions, mode, mode_reason)
    return _report(run_id, method, (mode, mode_reason), committee.keys, committee.judged_now - calls, dry_run, False,
                   fresh, list(reused.values()), kinds)


def _applied(decision: dict[str, Any], mode: str) -> dict[str, Any]:
    """The committee's proposal, applied when cleaning and only recorded when auditing."""
    proposed = decision.get("proposed") or decision["action"]
    return {**decision, "proposed": proposed, "action": proposed if mode == "clean" else "keep"}


def pending(store: Store, method: str, committee_keys: list[str]) -> int:
    """Items the next run would judge (for a progress bar)."""
    _, seen = _previous(Cleaning(store), method, committee_keys)
    return sum(f.kind in JUDGED_KINDS and f.id not in seen for f in store.list_feedback())


def _previous(cleaning: Cleaning, method: str, keys: list[str]) -> tuple[dict | None, dict[int, dict]]:
    """The newest view of this method and committee, and its decisions by feedback id."""
    run = cleaning.latest(method, keys)
    return run, ({d["feedback_id"]: d for d in cleaning.decisions(run["id"])} if run else {})


def _report(run_id, method, mode, keys, calls, dry_run, up_to_date, fresh, reused, kinds) -> CleaningReport:
    decisions = sorted([*fresh, *reused], key=lambda d: d["feedback_id"])
    by_category: dict[str, Counter] = defaultdict(Counter)
    by_source: dict[str, Counter] = defaultdict(Counter)
    for d in decisions:
        by_category[d["category"]][d["action"]] += 1
        by_source[kinds[d["feedback_id"]][1]][d["action"]] += 1
    return CleaningReport(
        run_id=run_id, method=method, mode=mode[0], mode_reason=mode[1], committee=keys, dry_run=dry_run,
        up_to_date=up_to_date, judged=len(fresh), reused=len(reused), member_calls=calls,
        counts={a: sum(d["action"] == a for d in decisions) for a in ("keep", "flip", "remove")},
        proposed={a: sum(d["proposed"] == a for d in decisions) for a in ("keep", "flip", "remove")},
        by_category={k: dict(v) for k, v in by_category.items()}, by_source={k: dict(v) for k, v in by_source.items()},
        items=[{**d, "kind": kinds[d["feedback_id"]][0], "source": kinds[d["feedback_id"]][1]} for d in decisions],
    )


def cleaned_preferences(store: Store, run_id: int | None = None) -> list[dict[str, Any]]:
    """The cleaned view learners read: preference pairs with flips applied and removals left out
    ({feedback_id, prompt, chosen, rejected, action}); the newest view when ``run_id`` is None."""
    cleaning = Cleaning(store)
    run = next((r for r in cleaning.runs() if r["id"] == run_id), None) if run_id else cleaning.latest()
    if run is None:
        return []
    decided = {d["feedback_id"]: d["action"] for d in cleaning.decisions(run["id"])}
    view = []
    for item in items_from(store, [f for f in store.list_feedback() if f.id in decided and f.kind == "preference"]):
        action = decided[item.feedback_id]
        if action == "remove":
            continue
        chosen, rejected = item.answers if action == "keep" else item.answers[::-1]
        view.append({"feedback_id": item.feedback_id, "prompt": item.prompt, "chosen": chosen, "rejected": rejected,
                     "action": action})
    return view
