"""A model's card: how far each of its judges can be trusted, measured on small sets that ship
with reverie (``card_data/``, taken from the project's development data; licences in its README).

  codejudge    CodeJudge binary and graded against whether each program passed its tests:
               Kendall tau-b of the score against the pass label, accuracy, invalid rate
  comparator   the pairwise comparator on ranked sets: commutativity (s_comm), negation
               invariance (s_neg), transitivity (s_tran_3) and agreement with the true order,
               raw (one order, as the chat's choice check reads it) and calibrated
  committee    the cleaning committee on preference pairs with known labels: the share of the
               clear pairs (not subjective, not both bad) where most voting members prefer the
               truly better answer; abstentions count as wrong
  qa           in-context question answering: the fact in the system prompt, a held-out
               question, "contains"

Plain functions of a backend and a committee; the agent caches the card (``agent.judges``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.llm.protocol import Backend
from graphs.committee import Committee, Item
from graphs.prompt import system_message
from graphs.verify import prompts
from graphs.verify.codejudge import CodeTask, JudgeConfig, judge_code, language_name
from graphs.verify.consistency import Comparator, SetJudgements, pairs_needed, read_sets
from learners import evaluate as ev
from learners.metrics import kendall_tau

DATA = Path(__file__).with_name("card_data")
FILES = ("codejudge.jsonl", "consistency.jsonl", "preferences.jsonl", "facts.jsonl")


@functools.cache
def data_version() -> str:
    """A card measured on other data (or other judge prompts) is stale: both are in its key."""
    digest = hashlib.sha256()
    for name in FILES:
        digest.update((DATA / name).read_bytes())
    return f"{digest.hexdigest()[:12]}-p{prompts.VERSION}"


def rows(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def code_figures(judged: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows of {passed, result, score, latency_s}: tau-b and accuracy over the valid verdicts (the
    paper leaves invalid ones out of the correlation; the invalid rate says how many)."""
    valid = [r for r in judged if r["score"] is not None]
    scores, labels = [r["score"] for r in valid], [float(r["passed"]) for r in valid]
    return {
        "items": len(judged),
        "invalid_rate": round(1 - len(valid) / len(judged), 3) if judged else None,
        "kendall_tau": kendall_tau(scores, labels) if len(valid) > 1 else None,
        "accuracy": round(sum((r["result"] == "yes") == r["passed"] for r in valid) / len(valid), 3) if valid else None,
        "s_per_item": round(statistics.mean(r["latency_s"] for r in judged), 2) if judged else None,
    }


def clear_pairs(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in pairs if not p["subjective"] and not p["both_bad"]]


def committee_accuracy(committee: Committee, pairs: list[dict[str, Any]] | None = None,
                       on_item: Callable[[], None] | None = None) -> dict[str, Any]:
    """How often the committee prefers the truly better answer of a clear pair (its votes are
    cached by the committee, so a second measurement of the same members costs nothing)."""
    clear = clear_pairs(pairs if pairs is not None else rows("preferences.jsonl"))
    right = abstained = 0
    for pair in clear:
        better, worse = ((pair["response_a"], pair["response_b"]) if pair["true_label"] == "a"
                         else (pair["response_b"], pair["response_a"]))
        votes, _ = committee.vote(Item(0, "preference", [{"role": "user", "content": pair["prompt"]}],
                                       [better, worse], "chosen-first"))
        abstained += not votes.voting
        right += votes.agreeing * 2 > votes.voting
        if on_item is not None:
            on_item()
    return {"members": committee.keys, "accuracy": round(right / len(clear), 3), "pairs": len(clear),
            "abstained": abstained}


def measure(backend: Backend, committee: Committee, system_prompt: str, progress) -> dict[str, Any]:
    """Every figure of the card (see the module's docstring); ``progress`` as ``learners.training``."""
    started = time.perf_counter()
    figures: dict[str, Any] = {}

    code = rows("codejudge.jsonl")
    advance = progress.phase("card: CodeJudge on programs with known test results", 2 * len(code))
    judged: dict[str, list[dict]] = {"binary": [], "graded": []}
    for item in code:
        task = CodeTask(item["problem"], item["code"], language_name(item["language"]), item.get("examples") or "",
                        item.get("reference"))
        for mode in judged:
            verdict = judge_code(backend, task, mode, JudgeConfig())
            judged[mode].append({"passed": item["passed"], "result": verdict.result, "score": verdict.score,
                                 "latency_s": verdict.latency_s})
            advance()
    figures["codejudge"] = {mode: code_figures(r) for mode, r in judged.items()}

    sets = read_sets((DATA / "consistency.jsonl").read_text(encoding="utf-8").splitlines(), "consistency.jsonl")
    advance = progress.phase("card: the comparator on ranked sets", pairs_needed(sets))
    comparator, per_set = Comparator(backend), []
    for one in sets:
        collected = SetJudgements.collect(comparator, one.instruction, one.items, one.negated_instruction, advance)
        per_set.append({view: collected.figures(view == "calibrated", 3, true_order=one.true_order)
                        for view in ("raw", "calibrated")})
    figures["comparator"] = {view: {k: _mean([s[view][k] for s in per_set])
                                    for k in ("s_comm", "s_neg", "s_tran_3", "agreement")}
                             for view in ("raw", "calibrated")}

    pairs = rows("preferences.jsonl")
    advance = progress.phase("card: the cleaning committee on labelled pairs", len(clear_pairs(pairs)))
    figures["committee"] = committee_accuracy(committee, pairs, advance)

    facts = rows("facts.jsonl")
    progress.note("card: answering with the fact in context")
    answers = ev.ask(backend, [system_message(system_prompt, [f["context"]])["content"] for f in facts],
                     [f["question"] for f in facts])
    figures["qa"] = {"contains": _mean([ev.score(a, f["answers"])[0] for a, f in zip(answers, facts)]),
                     "questions": len(facts)}
    figures["seconds"] = round(time.perf_counter() - started, 1)
    return figures


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(statistics.mean(kept), 3) if kept else None
