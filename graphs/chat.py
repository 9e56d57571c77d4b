"""The chat graph: recall -> respond -> verify -> log, checkpointed per thread.

    START -> recall -> respond -> verify -> log -> END

``recall`` also routes the turn: it picks the served version's frozen adapter that holds the
experience the message is about, if one of the user's does (``graphs.routing``), and ``respond``
answers with that adapter merged. Routing works with recall off too: it is how the weights answer.

The checkpointer keeps each thread's messages, so a conversation continues in a new process;
the experience log (``memory.Store``) keeps every turn for people and for the nightly learners.
Run dependencies (store, backend, settings, verifiers) travel in the LangGraph runtime context,
so one compiled graph serves any agent, and ``thread_id`` travels in the call's config.

Streaming goes through a callback in the context, not LangGraph's "custom" stream mode: that
mode runs every node on a fresh worker thread, and torch on a second thread was measured about
1.6x slower on 2 cores (README, "Performance"). Without it the nodes run on the caller's thread.
"""

from __future__ import annotations

import operator
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agent.errors import StoreError
from agent.llm.protocol import Backend, GenerationOptions, Message
from graphs.prompt import turn_prompt
from graphs.recommend import as_text, asks_for_picks
from graphs.routing import LIVE, answering, choose, policy_of
from memory.records import Adapter, NewTurn
from memory.retention import Retention
from memory.store import Store


class ChatState(TypedDict, total=False):
    """One thread. ``messages`` accumulates across turns; every other key describes the last turn.

    messages     the conversation: user and assistant messages, oldest first
    user         who is talking (memories are recalled for this user only)
    recall       whether this turn may recall memories
    started_at   wall-clock time the turn began (for its latency)
    memories     recalled memories: [{"kind", "id", "text", "score"}], most similar first
    adapter      the served version's adapter that answers this turn (None: the plain weights)
    reply        {"text", "model_version", "adapter", "prompt_tokens", "completion_tokens",
                 "finish_reason", "dropped_messages"} of the assistant's answer
    verdicts     what the verifiers said about the reply (graphs/verify); a verifier may also
                 replace ``reply`` (a revised answer), which is why the assistant's message joins
                 ``messages`` only in ``log``
    turn_ids     {"user": id, "assistant": id} of the two logged turns
    """

    messages: Annotated[list[Message], operator.add]
    user: str
    recall: bool
    started_at: float
    memories: list[dict[str, Any]]
    adapter: str | None
    reply: dict[str, Any]
    verdicts: list[dict[str, Any]]
    turn_ids: dict[str, int]


@dataclass(frozen=True)
class Verification:
    """What a verifier says about a turn (``graphs.verify.nodes``)."""

    verdict: dict[str, Any]  # stored on the turn, returned in Reply.verdicts
    reply: dict[str, Any] | None = None  # a replacement reply, when the verifier changed it


Verifier = Callable[[ChatState, "ChatContext"], Verification | None]


@dataclass
class ChatContext:
    """What the nodes need to do their work; given per call, never checkpointed."""

    store: Store
    backend: Backend
    system_prompt: str
    options: GenerationOptions
    recall_k: int = 4
    recall_min_score: float = 0.3
    route_min_score: float = 0.35
    library: Sequence[Adapter] = ()  # the served version's frozen adapters (memory.versions)
    on_text: Callable[[str], None] | None = None  # receives the reply's text as it is generated
    on_status: Callable[[str], None] | None = None  # hears what a verifier is doing (it may take a while)
    retention: Retention | None = None  # what the served weights hold; default: read from ``store``
    verifiers: Sequence[Verifier] = field(default_factory=tuple)  # graphs.verify.nodes: CodeCheck, ChoiceCheck
    # (messages, user, recall) -> graphs.recommend.Recommendation, or None without a catalogue: a
    # message that asks for recommendations is answered with its picks
    recommender: Callable[[list[Message], str, bool], Any] | None = None
    recommend_kind: str = "film"  # what the catalogue's items are: "suggest a film" asks for picks

    def __post_init__(self) -> None:
        if self.retention is None:
            self.retention = Retention(self.store)

    @property
    def prompt_budget(self) -> int:
        return self.backend.context_window - self.options.max_new_tokens


# -- nodes: each returns only the keys it changed ---------------------------------------------


def recall(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
    ctx, user = runtime.context, state["user"]
    recalling = state.get("recall", True)
    routing = any(a.user == user and a.kind == "knowledge" for a in ctx.library)
    if not recalling and not routing:
        return {"memories": [], "adapter": None}
    held = ctx.retention.held_by(ctx.backend.version)
    hits = ctx.store.search(state["messages"][-1]["content"], user=user, k=ctx.recall_k + min(len(held), 16),
                            statuses=LIVE, min_score=-1.0 if routing else ctx.recall_min_score)
    route = choose(hits, ctx.library, user, ctx.route_min_score)
    # Retention-aware: skip only experiences the weights answering this turn hold (their latest
    # probes all pass): those of the chosen adapter, or all held ones for a pre-0.2 version whose
    # one adapter is always merged. Any other one is recalled, so no answer is ever lost.
    chosen = next((a for a in ctx.library if a.name == route.adapter), None)
    answered = held & set(chosen.experiences) if chosen else (set() if ctx.library else held)
    memories = [h for h in hits if h.score >= ctx.recall_min_score
                and not (h.kind == "experience" and h.id in answered)][: ctx.recall_k] if recalling else []
    return {"memories": [{"kind": h.kind, "id": h.id, "text": h.text, "score": round(h.score, 4)} for h in memories],
            "adapter": route.adapter}


def respond(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
    ctx, backend = runtime.context, runtime.context.backend
    adapter, policy = state.get("adapter"), policy_of(ctx.library, state["user"])
    if ctx.recommender is not None and asks_for_picks(state["messages"][-1]["content"], ctx.recommend_kind):
        picked = _picks(state, ctx, adapter, policy)
        if picked is not None:
            return {"reply": picked}
    prompt, dropped = turn_prompt(state, ctx)
    merged = answering(ctx.library, state["user"], adapter) or None
    generation = backend.generate(prompt, replace(ctx.options, adapter=merged), on_text=ctx.on_text)
    reply = {
        "text": generation.text,
        "model_version": backend.version,
        "adapter": adapter,
        "policy": policy,
        "prompt_tokens": generation.prompt_tokens,
        "completion_tokens": generation.completion_tokens,
        "finish_reason": generation.finish_reason,
        "dropped_messages": dropped,
    }
    return {"reply": reply}


def _picks(state: ChatState, ctx: ChatContext, adapter: str | None, policy: str | None) -> dict | None:
    """The reply to a request for recommendations: the recommendation agent's picks, as text (None:
    no catalogue to pick from)."""
    result = ctx.recommender(state["messages"], state["user"], state.get("recall", True))
    if result is None:
        return None
    text = as_text(result)
    if ctx.on_text is not None:
        ctx.on_text(text)
    return {"text": text, "model_version": ctx.backend.version, "adapter": adapter, "policy": policy,
            "prompt_tokens": 0, "completion_tokens": len(ctx.backend.encode(text)), "finish_reason": "stop",
            "dropped_messages": 0, "recommendation": result.model_dump()}


def verify(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
    """Each configured verifier may add one verdict about the reply, and may replace the reply."""
    ctx, reply, verdicts = runtime.context, state["reply"], []
    for check in ctx.verifiers:
        outcome = check({**state, "reply": reply}, ctx)
        if outcome is not None:
            verdicts.append(outcome.verdict)
            reply = outcome.reply or reply
    return {"verdicts": verdicts} if reply is state["reply"] else {"verdicts": verdicts, "reply": reply}


def log(state: ChatState, runtime: Runtime[ChatContext], config) -> dict:
    reply, thread_id = state["reply"], config["configurable"]["thread_id"]
    said, answered = runtime.context.store.record_turns(
        NewTurn(thread_id=thread_id, user=state["user"], role="user", content=state["messages"][-1]["content"]),
        NewTurn(
            thread_id=thread_id,
            user=state["user"],
            role="assistant",
            content=reply["text"],
            model_version=reply["model_version"],
            latency_s=round(time.time() - state["started_at"], 4),
            prompt_tokens=reply["prompt_tokens"],
            completion_tokens=reply["completion_tokens"],
            verdicts=state.get("verdicts", []),
        ),
    )
    return {"messages": [{"role": "assistant", "content": reply["text"]}],
            "turn_ids": {"user": said.id, "assistant": answered.id}}


# -- wiring ----------------------------------------------------------------------------------


def build_chat_graph(checkpointer):
    graph = StateGraph(ChatState, context_schema=ChatContext)
    graph.add_node("recall", recall)
    graph.add_node("respond", respond)
    graph.add_node("verify", verify)
    graph.add_node("log", log)
    graph.add_edge(START, "recall")
    graph.add_edge("recall", "respond")
    graph.add_edge("respond", "verify")
    graph.add_edge("verify", "log")
    graph.add_edge("log", END)
    return graph.compile(checkpointer=checkpointer)


def conversation(graph, thread_id: str) -> list[Message]:
    """The messages a thread's checkpoint holds ([] when it has none). A checkpoint that cannot be
    read back (damaged, tampered with, of an unknown type) is one StoreError naming the thread."""
    try:
        return list(graph.get_state({"configurable": {"thread_id": thread_id}}).values.get("messages", []))
    except sqlite3.Error:
        raise
    except Exception as exc:  # the serialiser's own errors: msgpack, JSON, an unknown type
        raise StoreError(f"the saved conversation of thread {thread_id} cannot be read ({type(exc).__name__}: "
                         f"{exc}); `reverie threads repair {thread_id}` rebuilds it from the log") from exc


def rewrite_conversation(graph, thread_id: str, messages: Sequence[Message], user: str) -> None:
    """Replace a thread's checkpoints by one that holds ``messages`` (the log's, when they disagree)."""
    graph.checkpointer.delete_thread(thread_id)
    if messages:
        graph.update_state({"configurable": {"thread_id": thread_id}}, {"messages": list(messages), "user": user},
                           as_node="log")


def sqlite_checkpointer(path: Path, timeout_s: float = 10.0) -> SqliteSaver:
    """The SQLite saver, with strict deserialisation: a tampered file cannot make us run code."""
    conn = sqlite3.connect(path, timeout=timeout_s, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    saver = SqliteSaver(conn, serde=JsonPlusSerializer(allowed_msgpack_modules=None))
    saver.setup()
    return saver
