"""The refine step of a night: a user's policy refined by CORY (``learners.cory``), gated on its
own, and served as that user's policy adapter beside the knowledge adapters.

    START -> collect -> train -> evaluate -> gate -> record -> END
                |
                +--> END  (too few prompts, or an active version without a library)

  collect   prompts: the user's logged chat messages (most recent first, distinct) and, when
            configured, a prompt set; with the ``exact`` reward only the set's, which carry the
            answers. Every fourth one is held out: the gate measures on those, training never sees them
  train     CORY from the plain base: pioneer and observer adapters, the configured reward on
            (message, reply); the adapter that last played pioneer is the candidate policy, and
            its KL to the base is measured on the held-out prompts before it is unloaded
  evaluate  each held-out prompt answered as a turn of the user would be (greedy, routed to the
            knowledge adapter that holds what it is about) with the current policy and with the
            candidate: mean reward of each; general ability and chat perplexity with the candidate;
            the user's consolidated knowledge (its probes) answered with the candidate merged too
  gate      promote only if the held-out reward rose by more than ``min_gain``, the KL stayed
            under ``max_kl``, general ability and perplexity stayed within the gate's tolerances,
            and the knowledge probes did not fall beyond the retention tolerance
  record    a version whose library is the active one's, with this user's policy replaced by the
            candidate (learner "cory"); promoted if the gate passed, kept for the audit trail if not

The policy is separate from the knowledge adapters, so each is gated, and rolled back, on its
own: a later selfparam night inherits the policy as it inherits every adapter, and a version's
manifest says which of each it serves. Nodes return only the keys they changed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from graphs.prompt import system_message
from graphs.rewards import Reward
from graphs.routing import policy_of, route
from learners import cory, ppo
from learners import evaluate as ev
from learners.training import NullProgress, Progress
from memory.records import ModelVersion
from memory.retention import Retention
from memory.store import Store
from memory.versions import Versions

CANDIDATE = "candidate.policy"


class RefineState(TypedDict, total=False):
    prompts: dict  # {"train", "heldout", "from_turns", "from_set"}
    stop: str | None
    training: dict  # CORYResult.summary(), plus the curve per iteration
    figures: dict  # the candidate: held-out reward, KL, general ability, knowledge
    current: dict  # the served policy on the same measures
    passed: bool
    reasons: list[str]
    version: str | None
    promoted: bool


@dataclass
class RefineBench:
    tokenizer: Any = None
    model: Any = None
    train: list[str] = field(default_factory=list)  # user messages
    heldout: list[str] = field(default_factory=list)
    scratch: Path | None = None
    policy: Path | None = None  # the candidate's saved adapter


@dataclass
class RefineContext:
    store: Store
    retention: Retention
    versions: Versions
    active: ModelVersion
    load_base: Callable[[], tuple[Any, Any]]
    make_backend: Callable[[Any, Any, str], Any]
    user: str
    system_prompt: str
    reward: Reward  # (user messages, replies) -> scores
    config: cory.CORYConfig
    prompt_set: Sequence[str]  # configured prompts (the reward may need their answers)
    from_turns: bool  # also the user's logged messages
    max_prompts: int
    min_prompts: int
    min_gain: float
    max_kl: float
    thresholds: ev.GateThresholds
    cache: Path
    route_min_score: float = 0.35
    progress: Progress = field(default_factory=NullProgress)
    bench: RefineBench = field(default_factory=RefineBench)

    def chat_prompt(self, message: str) -> str:
        return self.bench.tokenizer.apply_chat_template(
            [system_message(self.system_prompt, []), {"role": "user", "content": message}], tokenize=False,
            add_generation_prompt=True)


def collect(state: RefineState, runtime: Runtime[RefineContext]) -> dict:
    ctx = runtime.context
    if ctx.versions.weights(ctx.active) is not None:
        return {"stop": f"{ctx.active.id} is a pre-0.2 version (one merged adapter); refine needs a library version"}
    turns = []
    if ctx.from_turns:
        for turn in reversed(ctx.store.list_turns(user=ctx.user, limit=8 * ctx.max_prompts)):
            if turn.role == "user" and turn.content.strip() and turn.content.strip() not in turns:
                turns.append(turn.content.strip())
    chosen = list(dict.fromkeys([*ctx.prompt_set, *turns]))[: ctx.max_prompts]
    if len(chosen) < ctx.min_prompts:
        return {"stop": f"{len(chosen)} prompts to refine on; at least {ctx.min_prompts} are needed"}
    ctx.bench.heldout = chosen[3::4]
    ctx.bench.train = [p for i, p in enumerate(chosen) if i % 4 != 3]
    return {"prompts": {"train": len(ctx.bench.train), "heldout": len(ctx.bench.heldout),
                        "from_set": len([p for p in chosen if p in set(ctx.prompt_set)]),
                        "from_turns": len([p for p in chosen if p not in set(ctx.prompt_set)])}, "stop": None}


def train(state: RefineState, runtime: Runtime[RefineContext]) -> dict:
    ctx, bench = runtime.context, runtime.context.bench
    bench.tokenizer, bench.model = ctx.load_base()
    messages = {ctx.chat_prompt(m): m for m in [*bench.train, *bench.heldout]}

    def reward(queries: Sequence[str], replies: Sequence[str]) -> Sequence[float]:
        return ctx.reward([messages[q] for q in queries], replies)  # the reward sees what the user wrote

    queries = [ctx.chat_prompt(m) for m in bench.train]
    result = cory.train(bench.model, bench.tokenizer, queries, reward, ctx.config, ctx.progress)
    heldout = ppo.encode(bench.tokenizer, [ctx.chat_prompt(m) for m in bench.heldout])
    sampled = ppo.rollout(result.model, bench.tokenizer, heldout, ctx.config)
    scores = ppo.check_scores(reward([ctx.chat_prompt(m) for m in bench.heldout],
                                     bench.tokenizer.batch_decode(sampled.response_ids, skip_special_tokens=True)))
    kl = ppo.kl_per_response(ppo.prepare(result.model, ppo.new_value_head(result.model), sampled, scores, scores,
                                         ctx.config, 0.0))
    bench.scratch = ctx.cache / f"refine-{ctx.user}"
    shutil.rmtree(bench.scratch, ignore_errors=True)
    result.model.save_pretrained(str(bench.scratch), selected_adapters=[result.pioneer])
    bench.policy = bench.scratch / result.pioneer  # peft saves a named adapter in its own folder
    bench.model = result.model.unload()
    curve = [{"iteration": s["iteration"], "reward": s["pioneer_reward"], "kl": s["pioneer_kl"],
              "observer_reward": s["observer_reward"], "collective_reward": s["collective_reward"]}
             for s in result.stats]
    return {"training": {**result.summary(), "curve": curve, "heldout_kl": round(kl, 4)}}


def evaluate(state: RefineState, runtime: Runtime[RefineContext]) -> dict:
    ctx, bench = runtime.context, runtime.context.bench
    backend = ctx.make_backend(bench.tokenizer, bench.model, "candidate")
    library = ctx.versions.library(ctx.active)
    backend.attach({**{a.name: a.path for a in library}, CANDIDATE: bench.policy})
    served = policy_of(library, ctx.user)
    owners = {e.id: e.user for e in ctx.store.list_experiences(user=ctx.user, statuses=["consolidated"])}
    held = sorted({e for a in library if a.kind == "knowledge" and a.user == ctx.user for e in a.experiences
                   if e in owners})
    probes = [p for p in ctx.retention.probes(held) if p.kind == "recall"]
    advance = ctx.progress.phase("evaluating the policy", 2 * (len(bench.heldout) + len(probes)) + 1)

    def answers(questions: Sequence[str], policy: str | None, tokens: int) -> list[str]:
        out = []
        for question in questions:  # one at a time: each is routed as its turn would be
            knowledge = route(ctx.store, library, question, ctx.user, ctx.route_min_score).adapter
            merged = tuple(n for n in (knowledge, policy) if n) or None
            out += ev.ask(backend, ctx.system_prompt, [question], max_new_tokens=tokens, adapter=merged)
            advance(1)
        return out

    def measured(policy: str | None) -> dict:
        replies = answers(bench.heldout, policy, ctx.config.max_new_tokens)
        rewards = ppo.check_scores(ctx.reward(bench.heldout, replies))
        probed = answers([p.question for p in probes], policy, ev.PROBE_TOKENS)
        knowledge = [ev.score(a, p.answers)[0] for a, p in zip(probed, probes)]
        return {"reward": round(rewards.mean().item(), 4),
                "retention": round(sum(knowledge) / len(knowledge), 4) if knowledge else None}

    current = {**measured(served), **(_general(ctx, backend, served))}
    figures = {**measured(CANDIDATE), **ev.general_ability(backend, ctx.system_prompt, adapter=CANDIDATE),
               "kl": state["training"]["heldout_kl"]}
    advance(1)
    return {"figures": figures, "current": {**current, "policy": served}}


def _general(ctx: RefineContext, backend, served: str | None) -> dict:
    if served is None:  # the base's figures, measured once per base (the nights' too)
        known = ctx.retention.general(ctx.versions.root(ctx.active).id)
        if known is not None:
            return known
    return ev.general_ability(backend, ctx.system_prompt, adapter=served)


def gate(state: RefineState, runtime: Runtime[RefineContext]) -> dict:
    ctx, figures, current = runtime.context, state["figures"], state["current"]
    _, reasons = ev.gate(figures, current, ctx.thresholds)
    if not figures["reward"] > current["reward"] + ctx.min_gain:
        reasons.insert(0, f"held-out reward {figures['reward']:.3f} did not rise above {current['reward']:.3f}"
                          + (f" + {ctx.min_gain:.3f}" if ctx.min_gain else ""))
    if not figures["kl"] <= ctx.max_kl:
        reasons.append(f"KL to the base {figures['kl']:.2f} > {ctx.max_kl:.2f}")
    return {"passed": not reasons, "reasons": reasons}


def record(state: RefineState, runtime: Runtime[RefineContext]) -> dict:
    ctx, bench = runtime.context, runtime.context.bench
    entries = [e for e in ctx.active.manifest.get("adapters", [])
               if not (e.get("kind") == "policy" and e["user"] == ctx.user)]
    entries.append({"version": None, "name": None, "folder": "adapters/policy", "user": ctx.user,
                    "experiences": [], "kind": "policy"})
    manifest = {"user": ctx.user, "adapters": entries,
                "refine": {"config": ctx.config.model_dump(), "prompts": state["prompts"],
                           "training": state["training"], "figures": state["figures"], "current": state["current"],
                           "gate": {"passed": state["passed"], "reasons": state["reasons"],
                                    "min_gain": ctx.min_gain, "max_kl": ctx.max_kl}}}

    def write(folder: Path) -> None:
        shutil.copytree(bench.policy, folder / "adapters" / "policy")

    version = ctx.versions.create(parent=ctx.active.id, learner="cory", manifest=manifest, write=write)
    if state["passed"]:
        ctx.versions.promote(version.id, reason=f"refine of {ctx.user}'s policy: gate passed")
    shutil.rmtree(bench.scratch, ignore_errors=True)
    return {"version": version.id, "promoted": state["passed"]}


def after_collect(state: RefineState) -> str:
    return END if state.get("stop") else "train"


def build_refine_graph():
    graph = StateGraph(RefineState, context_schema=RefineContext)
    for name, node in [("collect", collect), ("train", train), ("evaluate", evaluate), ("gate", gate),
                       ("record", record)]:
        graph.add_node(name, node)
    graph.add_edge(START, "collect")
    graph.add_conditional_edges("collect", after_collect, ["train", END])
    for a, b in [("train", "evaluate"), ("evaluate", "gate"), ("gate", "record"), ("record", END)]:
        graph.add_edge(a, b)
    return graph.compile()


def run_refine(ctx: RefineContext) -> dict:
    """Run the graph inline (on the agent's model thread) and return its final state."""
    final: dict = {}
    try:
        for final in build_refine_graph().stream({}, context=ctx, stream_mode="values"):
            pass
    finally:
        if ctx.bench.scratch is not None:
            shutil.rmtree(ctx.bench.scratch, ignore_errors=True)
    return final

