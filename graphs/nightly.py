"""The nightly graph: clean the day's feedback, fold the day's experiences into the weights, and
keep the result only if it is better.

    START -> clean -> extract -> select -> prepare -> train -> evaluate -> gate -> record -> END
               |                   |          |         ^                    |
               +-------------------+----------+--> END  +----- once --------+

  clean     the day's feedback, judged by the committee (Source-Aware Cleaning, ``graphs.cleaning``)
            into a new version of the cleaned view; skipped when no committee is given
            (cleaning off, a dry run, or ``learn --only selfparam``)
  --------  ``learn --only clean`` ends here
  extract   informative user turns of the day become experiences (source "extracted")
  select    the user's new experiences (in no adapter of the active version), oldest first up to
            a night's cap; one refused on ``learn.max_attempts`` nights is left to recall (parked);
            nothing new ends the night
  prepare   fresh base weights; probes set aside per new experience (never trained on); the
            model's own QA pairs for the rest (``learners.synthesis``); replay text; the new
            experiences split into groups of ``learn.adapter_size``, one target set each. A dry
            run ends here, having written nothing
  train     SELF-PARAM (``learners.selfparam``): one fresh LoRA adapter per group, from the base;
            the teacher is the base with the experience in its prompt. Earlier nights' adapters
            are never touched: knowledge accumulates because nothing overwrites it
  evaluate  probes with no recall, each question routed as a chat turn would be
            (``graphs.routing``) over the active version's library plus tonight's adapters:
            efficacy (new), retention (earlier), near-miss pollution; and general ability with
            each new adapter merged (what a wrongly routed turn would get)
  gate      keep each new adapter that reaches its efficacy without hurting general ability;
            promote if one is kept and retention did not fall beyond its tolerance. An adapter
            that learned but hurt the model (general questions, chat perplexity) is trained once
            more the same night with SELF-PARAM's KL alone (``selfparam.answer_ce`` 0), and the
            night evaluated again: the answers' cross-entropy helps where the model tolerates
            it, and a model that does not still gets its night
  record    an immutable version whose library is the active one's plus the kept adapters (refused
            ones too, for the audit trail), probe results, promote, experience statuses, prune

Nodes are plain functions over ``NightState`` that return only the keys they changed; the data
goes through the store (``memory``), the algorithms are ``learners``. The state holds what a
person reads in the report; weights and backends live in the run's ``Workbench`` (in the
context), never in the state.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from graphs.cleaning import clean as clean_feedback
from graphs.cleaning import pending
from graphs.committee import Committee
from graphs.extraction import is_informative
from graphs.prompt import system_message
from graphs.routing import answering, route
from learners import evaluate as ev
from learners.selfparam import REPLAY_PROMPTS, SelfParamConfig, replay_count, replay_pairs, target_set, train
from learners.synthesis import SynthesisConfig, set_aside_probes, synthesize
from learners.training import NullProgress, Progress
from memory.records import Adapter, ModelVersion
from memory.retention import Retention
from memory.store import Store
from memory.versions import Versions


class NightState(TypedDict, total=False):
    cleaning: dict | None  # the feedback cleaned tonight: view, method, judged, counts
    run_id: int | None
    extracted: list[dict]  # [{"turn_id", "text", "experience_id"}]
    new: list[int]  # experiences learned tonight
    deferred: list[int]  # new ones past the night's cap: a later night learns them (recall answers them meanwhile)
    retried: list[int]  # new ones refused on an earlier night, tried again tonight
    parked: list[int]  # refused on learn.max_attempts nights: no longer trained, recall answers them
    stop: str | None  # why the night ended early
    synthesis: dict  # per new experience: the yield report and the probes set aside
    target_set: dict  # sentences by kind
    training: dict  # SelfParamResult.summary()
    figures: dict  # the candidate's evaluation
    current: dict  # the active version's figures, for the gate
    passed: bool
    reasons: list[str]
    kept: list[str]  # tonight's adapters the gate kept
    retrain: list[str]  # adapters the gate sends back to train with the KL alone (empty: go on to record)
    retrained: dict[str, list[str]]  # adapters trained again with the KL alone: why the gate refused them first
    version: str | None
    promoted: bool
    consolidated: list[int]  # experiences whose probes all pass on the promoted version
    relapsed: list[int]  # consolidated before, failing now: back to short-term (recalled again)
    pruned: list[str]


class NightKnobs(Protocol):
    """What a night does around its learners (the ``[learn]`` settings section)."""

    max_new: int  # new experiences learned per night at most, oldest first
    adapter_size: int  # experiences per adapter
    max_attempts: int  # nights an experience may be refused before it is left to recall
    replay: int  # replay sentences, at least
    replay_ratio: float  # replay sentences per experience sentence
    probes: int  # probe questions set aside per experience
    extract_turns: bool  # also learn informative statements from chats


@dataclass
class Workbench:
    """The night's heavy objects: fresh base weights, the model being trained, their backends."""

    tokenizer: Any = None
    model: Any = None  # the base, then (after train) the PeftModel candidate
    base: Any = None  # a backend over the base weights, before any adapter is attached
    groups: list[list[int]] = field(default_factory=list)  # the new experiences, one adapter each
    attempts: list[int] = field(default_factory=list)  # per group, the most earlier refusals of its experiences
    targets: list[list] = field(default_factory=list)  # TargetSentence rows, one list per group
    scratch: Path | None = None  # the trained adapters, until record copies the kept ones
    candidates: list[Adapter] = field(default_factory=list)  # tonight's adapters, named "candidate.<k>"
    probe_rows: dict = field(default_factory=dict)  # experience id -> [(probe_id, answer, contains, f1)]
    run_id: int | None = None  # the learn run, from the moment the night starts work that writes


@dataclass
class NightContext:
    store: Store
    retention: Retention
    versions: Versions
    base_model: str  # the model spec whose version line learns
    active: ModelVersion  # the version serving when the night starts
    load_base: Callable[[], tuple[Any, Any]]  # fresh (tokenizer, model) of the base weights
    make_backend: Callable[[Any, Any, str], Any]  # (tokenizer, model, version) -> Backend
    user: str
    system_prompt: str
    learn: NightKnobs
    selfparam: SelfParamConfig
    synthesis: SynthesisConfig
    thresholds: ev.GateThresholds
    cache: Path  # replay text, per base version
    keep_versions: int  # versions whose weights prune keeps
    generator: Any = None  # a separate question-writing backend, if configured
    committee: Committee | None = None  # cleans the day's feedback first; None: no cleaning tonight
    clean_method: str = "sac"
    clean_mode: str = "audit"  # clean: the committee's flips and removals apply; audit: recorded only
    clean_mode_reason: str = ""
    route_min_score: float = 0.35  # as chat turns route (settings.route_min_score)
    consolidate: bool = True  # False: the night only cleans (``learn --only clean``)
    dry_run: bool = False
    progress: Progress = field(default_factory=NullProgress)
    bench: Workbench = field(default_factory=Workbench)

    def teacher_system(self, experience: str) -> str:
        """The system message recall writes at day-time: the teacher is exactly that view."""
        return system_message(self.system_prompt, [experience])["content"]


# -- nodes: each returns only the keys it changed ---------------------------------------------


def clean(state: NightState, runtime: Runtime[NightContext]) -> dict:
    """First, the day's feedback is cleaned into a new view (incremental: only what is new)."""
    ctx = runtime.context
    todo = pending(ctx.store, ctx.clean_method, ctx.committee.keys) if ctx.committee is not None else 0
    if not todo:
        return {"cleaning": None}
    advance = ctx.progress.phase("cleaning feedback", todo)
    report = clean_feedback(ctx.store, ctx.committee, ctx.clean_method, mode=ctx.clean_mode,
                            mode_reason=ctx.clean_mode_reason, on_item=advance)
    return {"cleaning": {"run_id": report.run_id, "method": report.method, "mode": report.mode,
                         "mode_reason": report.mode_reason, "judged": report.judged, "counts": report.counts,
                         "proposed": report.proposed}}


def extract(state: NightState, runtime: Runtime[NightContext]) -> dict:
    ctx = runtime.context
    if not ctx.learn.extract_turns:
        return {"extracted": []}
    done = ctx.store.turns_made_experiences()
    turns = [t for t in ctx.store.list_turns(user=ctx.user)
             if t.role == "user" and t.id not in done and is_informative(t.content)]
    known = {e.text for e in ctx.store.list_experiences(user=ctx.user)}
    extracted = []
    for turn in turns:
        if turn.content.strip() in known:
            continue
        known.add(turn.content.strip())
        experience_id = None
        if not ctx.dry_run:
            experience_id = ctx.store.add_experiences([turn.content.strip()], "extracted", ctx.user, turn_id=turn.id)[0].id
        extracted.append({"turn_id": turn.id, "text": turn.content.strip(), "experience_id": experience_id})
    return {"extracted": extracted}


def select(state: NightState, runtime: Runtime[NightContext]) -> dict:
    ctx = runtime.context
    # "New" means in no adapter of the active version: a refused night's experiences, or those of
    # an adapter a rollback left behind, come back as new.
    held = {e for adapter in ctx.versions.library(ctx.active) for e in adapter.experiences}
    live = ctx.store.list_experiences(user=ctx.user, statuses=["short_term", "consolidated"])
    # Oldest first: a night costs about its experience count times the learning time per
    # experience, so the cap bounds it, and what waits longest goes first.
    refused = ctx.retention.refusals(ctx.base_model)
    # Bounded retries: an experience whose adapter failed its probes night after night would
    # otherwise cost a night's training every night and never be held.
    parked = sorted(e.id for e in live if e.id not in held and refused.get(e.id, 0) >= ctx.learn.max_attempts)
    new = sorted(e.id for e in live if e.id not in held and e.id not in parked)
    if not new and not (ctx.dry_run and state.get("extracted")):
        left = f" ({len(parked)} left to recall after {ctx.learn.max_attempts} refused nights)" if parked else ""
        return {"new": [], "parked": parked, "stop": f"nothing new to consolidate{left}"}
    cap = ctx.learn.max_new
    return {"new": new[:cap], "deferred": new[cap:], "retried": [e for e in new[:cap] if refused.get(e)],
            "parked": parked, "stop": None}


def prepare(state: NightState, runtime: Runtime[NightContext]) -> dict:
    ctx, bench = runtime.context, runtime.context.bench
    if not ctx.dry_run:  # a run is "running" from here: stopped or killed, it is found and finished
        bench.run_id = ctx.retention.start_run(ctx.base_model, ctx.active.id)
    bench.tokenizer, bench.model = ctx.load_base()
    base_id = ctx.versions.root(ctx.active).id
    bench.base = ctx.make_backend(bench.tokenizer, bench.model, base_id)
    generator = ctx.generator or bench.base
    texts = {e.id: e.text for e in ctx.store.list_experiences(user=ctx.user)}
    todo = list(state["new"]) + ([] if not ctx.dry_run else [x["text"] for x in state.get("extracted", [])])

    # Probes first, then pairs: a probe is set aside before anything could train on it.
    report: dict[str, Any] = {}
    pairs: dict[int | str, list[tuple[str, str, bool]]] = {}
    stored = ctx.retention.pairs([i for i in todo if isinstance(i, int)])
    advance = ctx.progress.phase("writing QA pairs", len(todo))
    for item in todo:
        experience = texts[item] if isinstance(item, int) else item
        if stored.get(item):  # written on a night that did not finish: the same pairs again
            pairs[item] = stored[item]
            report[str(item)] = {"reused": True, "probes": [p.question for p in ctx.retention.probes([item])],
                                 "pairs": [{"question": q, "answer": a, "recited": r} for q, a, r in stored[item]]}
            advance(1)
            continue
        written, yield_report = synthesize(
            generator, bench.base, experience, system_prompt=ctx.system_prompt,
            teacher_system=ctx.teacher_system, config=ctx.synthesis,
        )
        existing = ctx.retention.probes([item]) if isinstance(item, int) else []
        count = 0 if existing else ctx.learn.probes
        probes, rest = set_aside_probes(experience, written, count)
        if isinstance(item, int) and not ctx.dry_run:
            ctx.retention.add_probes(item, [(q, a, "recall") for q, a in probes], origin="synthesized")
            probe_questions = {p.question for p in ctx.retention.probes([item])}
            rest = [p for p in rest if p.question not in probe_questions]
            ctx.retention.add_pairs(item, [(p.question, p.answer, p.recited) for p in rest])
        pairs[item] = [(p.question, p.answer, p.recited) for p in rest]
        report[str(item)] = {**yield_report.as_dict(), "probes": [q for q, _ in probes] or [p.question for p in existing],
                             "pairs": [{"question": p.question, "answer": p.answer, "recited": p.recited} for p in rest]}
        advance(1)
    if ctx.dry_run:
        return {"synthesis": report}

    replay = _replay(ctx, bench.base, base_id)
    # Refused experiences are grouped like new ones: one fact per adapter measured worse than two
    # (examples/adapter_capacity.py), so a retry does not train them alone.
    new, size = list(state["new"]), ctx.learn.adapter_size
    bench.groups = [new[i : i + size] for i in range(0, len(new), size)]
    refused = ctx.retention.refusals(ctx.base_model)
    bench.attempts = [max(refused.get(e, 0) for e in group) for group in bench.groups]
    counts = {"new": 0, "replay": 0, "adapters": len(bench.groups)}
    for group in bench.groups:
        rows = [(e, texts[e], q, a) for e in group for q, a, _ in pairs[e]]
        count = replay_count(len(rows), ctx.learn.replay, ctx.learn.replay_ratio)
        counts["new"], counts["replay"] = counts["new"] + len(rows), counts["replay"] + min(count, len(replay))
        rows += [(None, "", q, a) for q, a in replay[:count]]
        bench.targets.append(target_set(bench.tokenizer, ctx.system_prompt, ctx.teacher_system, rows))
    if ctx.retention.general(base_id) is None:
        ctx.progress.note("measuring the base model's general ability (once)")
        ctx.retention.set_general(base_id, ev.general_ability(bench.base, ctx.system_prompt))
    return {"synthesis": report, "target_set": counts}


def train_node(state: NightState, runtime: Runtime[NightContext]) -> dict:
    """One fresh adapter per group, each from the plain base, saved to the night's scratch folder;
    sent back by the gate, only the adapters it names, again, with the KL alone."""
    ctx, bench = runtime.context, runtime.context.bench
    again = set(state.get("retrain") or [])
    if not again:
        bench.scratch = ctx.cache / f"night-{bench.run_id}"
        shutil.rmtree(bench.scratch, ignore_errors=True)
    summaries = list(state.get("training", {}).get("adapters", []))
    spent = state.get("training", {}).get("seconds", 0.0)  # every training of the night, a replaced one's too
    for k, (group, target, attempt) in enumerate(zip(bench.groups, bench.targets, bench.attempts), start=1):
        name = f"candidate.{k}"
        if again and name not in again:
            continue
        if len(bench.groups) > 1 or again:
            ctx.progress.note(f"adapter {k} of {len(bench.groups)}: experiences {', '.join(map(str, group))}"
                              + (", again with the KL alone" if again else ""))
        # A retry trains with another seed: the same pairs, grouping and seed would make the refused
        # adapter again, bit for bit (README: it still rarely rescues one).
        update = {"seed": ctx.selfparam.seed + attempt} | ({"answer_ce": 0.0} if again else {})
        result = train(bench.model, bench.tokenizer, target, ctx.selfparam.model_copy(update=update),
                       progress=ctx.progress)
        folder = bench.scratch / str(k)
        shutil.rmtree(folder, ignore_errors=True)
        result.model.save_pretrained(str(folder))
        bench.model = result.model.unload()  # the LoRA layers out, the base weights as they were
        adapter = Adapter(name=name, version="candidate", user=ctx.user, experiences=group, path=str(folder))
        summary = result.summary()
        spent += summary.get("seconds", 0.0)
        if again:
            bench.candidates[k - 1], summaries[k - 1] = adapter, summary
        else:
            bench.candidates.append(adapter)
            summaries.append(summary)
    return {"training": {"adapters": summaries, "seconds": round(spent, 2)}}


def evaluate(state: NightState, runtime: Runtime[NightContext]) -> dict:
    ctx, bench = runtime.context, runtime.context.bench
    backend = ctx.make_backend(bench.tokenizer, bench.model, "candidate")
    library = ctx.versions.library(ctx.active) + bench.candidates
    backend.attach({a.name: a.path for a in library})
    owners = {e.id: e.user for e in ctx.store.list_experiences(statuses=["short_term", "consolidated"])}
    held = {e for a in library for e in a.experiences if e in owners}
    probes = ctx.retention.probes(sorted(held))
    advance = ctx.progress.phase("evaluating", len(probes) + len(ev.GENERAL_QUESTIONS) * len(bench.candidates))

    # Every probe is asked as a turn of its owner would be: routed by its question, with the
    # owner's refined policy (if any) merged too.
    routes = [answering(library, owners[p.experience_id],
                        route(ctx.store, library, p.question, owners[p.experience_id], ctx.route_min_score).adapter)
              for p in probes]
    answers: dict[int, str] = {}
    for merged in sorted(set(routes)):
        group = [p for p, r in zip(probes, routes) if r == merged]
        answers.update(zip((p.id for p in group), ev.ask(backend, ctx.system_prompt, [p.question for p in group],
                                                          adapter=merged or None)))
        advance(len(group))
    forbidden: dict[int, list[str]] = {}
    for p in probes:
        if p.kind == "recall":
            forbidden.setdefault(p.experience_id, []).extend(p.answers)
    bench.probe_rows = {}
    for probe in probes:
        answer = answers[probe.id]
        if probe.kind == "near_miss":
            row = (probe.id, answer, float(ev.polluted(answer, forbidden.get(probe.experience_id, []))), 0.0)
        else:
            row = (probe.id, answer, *ev.score(answer, probe.answers))
        bench.probe_rows.setdefault(probe.experience_id, []).append((probe, row))

    def mean(experiences, kind: str, i: int) -> float | None:
        values = [row[2 + i] for e in experiences for probe, row in bench.probe_rows.get(e, []) if probe.kind == kind]
        return round(sum(values) / len(values), 4) if values else None

    adapters = {}
    for adapter in bench.candidates:
        general = ev.general_ability(backend, ctx.system_prompt, adapter=adapter.name)
        advance(len(ev.GENERAL_QUESTIONS))
        adapters[adapter.name] = {"experiences": adapter.experiences, "efficacy": mean(adapter.experiences, "recall", 0),
                                  **general}
    new, earlier = set(state["new"]), held - set(state["new"])
    figures = {"efficacy": mean(new, "recall", 0), "efficacy_f1": mean(new, "recall", 1),
               "retention": mean(earlier, "recall", 0), "retention_f1": mean(earlier, "recall", 1),
               "pollution": mean(held, "near_miss", 0),
               "general_contains": min(a["general_contains"] for a in adapters.values()),
               "perplexity": max(a["perplexity"] for a in adapters.values()), "adapters": adapters}
    scores = ctx.retention.latest_scores(ctx.active.id)
    before = [scores[e] for e in earlier if e in scores]
    current = {**ctx.retention.general(ctx.versions.root(ctx.active).id),
               "retention": round(sum(before) / len(before), 4) if before else None}
    backend.attach({})  # the plain weights back in the model: a second training starts from them
    return {"figures": figures, "current": current}


def gate(state: NightState, runtime: Runtime[NightContext]) -> dict:
    """Each new adapter on its own figures; then the night on what it does to earlier experiences."""
    figures, current, thresholds = state["figures"], state["current"], runtime.context.thresholds
    reasons, kept, hurt = [], [], {}
    for name, adapter in figures["adapters"].items():
        passed, why = ev.gate(adapter, {**current, "retention": None}, thresholds)
        if passed:
            kept.append(name)
        reasons += [f"{name} (experiences {', '.join(map(str, adapter['experiences']))}): {r}" for r in why]
        learned = adapter["efficacy"] is None or adapter["efficacy"] >= thresholds.min_efficacy
        if not passed and learned:  # refused only for what it did to the model
            hurt[name] = why
    _, why = ev.gate({**current, "retention": figures["retention"]}, current, thresholds)
    reasons += why
    if not kept and not reasons:
        reasons.append("no adapter was trained")
    passed = bool(kept) and not why
    if "retrained" in state or not runtime.context.selfparam.answer_ce:  # the KL alone was tried, or is all there is
        return {"passed": passed, "reasons": reasons, "kept": kept, "retrain": []}
    for name, why in hurt.items():
        runtime.context.progress.note(f"{name} hurt the model ({'; '.join(why)}): training it again with the KL alone")
    return {"passed": passed, "reasons": reasons, "kept": kept, "retrain": sorted(hurt), "retrained": hurt}


def record(state: NightState, runtime: Runtime[NightContext]) -> dict:
    ctx, bench = runtime.context, runtime.context.bench
    # What the run trained on is written only now, with the version it made: a night that stops
    # earlier leaves its experiences new (probes and pairs are kept and reused), never half-recorded.
    run_id = bench.run_id
    kept = [a for a in bench.candidates if a.name in state["kept"]]
    own = [{"version": None, "name": None, "folder": f"adapters/{k}", "user": a.user, "experiences": a.experiences}
           for k, a in enumerate(kept, start=1)]
    inherited = ctx.active.manifest.get("adapters", [])  # frozen: listed again, never copied or changed
    manifest = {
        "run_id": run_id,
        "user": ctx.user,
        "settings": {"selfparam": ctx.selfparam.model_dump(), "synthesis": ctx.synthesis.model_dump(),
                     "thresholds": ctx.thresholds.model_dump(), "adapter_size": ctx.learn.adapter_size,
                     "replay": ctx.learn.replay, "replay_ratio": ctx.learn.replay_ratio,
                     "route_min_score": ctx.route_min_score},
        "experiences": {"new": state["new"], "kept": [e for a in kept for e in a.experiences]},
        "adapters": inherited + own,
        "feedback": ctx.store.corrections_behind(state["new"]),
        "target_set": state["target_set"],
        "training": state["training"],
        "figures": state["figures"],
        "current": state["current"],
        "gate": {"passed": state["passed"], "reasons": state["reasons"], "kept": state["kept"]},
        "retrained": state.get("retrained", {}),  # adapters trained again with the KL alone, and why
    }

    def write(folder: Path) -> None:
        for k, adapter in enumerate(kept, start=1):
            shutil.copytree(adapter.path, folder / "adapters" / str(k))
        with open(folder / "target_set.jsonl", "w", encoding="utf-8") as handle:
            for k, target in enumerate(bench.targets, start=1):  # provenance: exactly what was trained on
                for s in target:
                    handle.write(json.dumps({"group": k, "experience_id": s.experience_id, "text": s.text}) + "\n")

    version = ctx.versions.create(parent=ctx.active.id, learner="selfparam", manifest=manifest, write=write)
    ctx.retention.set_general(version.id, {k: state["figures"][k] for k in ("general_contains", "perplexity")})
    # The version's results: earlier experiences, and tonight's whose adapter it kept. A dropped
    # adapter's experiences get none, so the version never claims to hold them: recall answers them.
    dropped = {e for a in bench.candidates if a.name not in state["kept"] for e in a.experiences}
    ctx.retention.record_trained(run_id, {**{e: "new" for e in manifest["experiences"]["kept"]},
                                          **{e: "refused" for e in dropped}})
    ctx.retention.record_results(run_id, version.id, [row for e, rows in bench.probe_rows.items() if e not in dropped
                                                      for _, row in rows])
    consolidated, relapsed = [], []
    if state["passed"]:
        ctx.versions.promote(version.id, reason=f"learn run {run_id}: gate passed")
        consolidated, relapsed = ctx.retention.settle_statuses(version.id)
    shutil.rmtree(bench.scratch, ignore_errors=True)
    pruned = ctx.versions.prune(ctx.base_model, ctx.keep_versions)
    return {"run_id": run_id, "version": version.id, "promoted": state["passed"], "consolidated": consolidated,
            "relapsed": relapsed, "pruned": pruned}


# -- helpers ---------------------------------------------------------------------------------



def _replay(ctx: NightContext, base, base_id: str) -> list[tuple[str, str]]:
    """The base model's own answers to the replay prompts, written once per base version and prompt set."""
    prompts = hashlib.sha256("\n".join(REPLAY_PROMPTS).encode()).hexdigest()[:8]
    path = ctx.cache / f"replay-{base_id}-{prompts}.json"
    if path.is_file():
        return [tuple(p) for p in json.loads(path.read_text())]
    pairs = replay_pairs(base, ctx.system_prompt)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(pairs))
    tmp.replace(path)
    return pairs


# -- wiring ----------------------------------------------------------------------------------


def after_clean(state: NightState, runtime: Runtime[NightContext]) -> str:
    return "extract" if runtime.context.consolidate else END


def after_select(state: NightState) -> str:
    return END if state.get("stop") else "prepare"


def after_prepare(state: NightState) -> str:
    """A dry run stops once it has shown what it would learn; a real night built its target set."""
    return "train" if "target_set" in state else END


def after_gate(state: NightState) -> str:
    return "train" if state.get("retrain") else "record"


def build_nightly_graph():
    graph = StateGraph(NightState, context_schema=NightContext)
    for name, node in [("clean", clean), ("extract", extract), ("select", select), ("prepare", prepare),
                       ("train", train_node), ("evaluate", evaluate), ("gate", gate), ("record", record)]:
        graph.add_node(name, node)
    graph.add_edge(START, "clean")
    graph.add_conditional_edges("clean", after_clean, ["extract", END])
    graph.add_edge("extract", "select")
    graph.add_conditional_edges("select", after_select, ["prepare", END])
    graph.add_conditional_edges("prepare", after_prepare, ["train", END])
    graph.add_edge("train", "evaluate")
    graph.add_edge("evaluate", "gate")
    graph.add_conditional_edges("gate", after_gate, ["train", "record"])
    graph.add_edge("record", END)
    return graph.compile()


def run_night(ctx: NightContext) -> dict:
    """Run the graph inline (on the caller's thread: the agent's model thread) and return its state."""
    started = time.perf_counter()
    final: dict = {}
    try:
        for final in build_nightly_graph().stream({}, context=ctx, stream_mode="values"):
            pass
    except BaseException:  # stopped (Ctrl-C) or failed: the run is finished from what it left
        if ctx.bench.run_id is not None:
            ctx.retention.reconcile([ctx.bench.run_id])
        raise
    report = {**final, "dry_run": ctx.dry_run, "parent": ctx.active.id, "user": ctx.user,
              "seconds": round(time.perf_counter() - started, 2)}
    if report.get("run_id"):
        ctx.retention.finish_run(report["run_id"], report["version"], report["promoted"], report)
    return report
