"""The chat graph on the tiny random model, a real store, and LangGraph's in-memory saver."""

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from agent.llm import GenerationOptions
from graphs.chat import ChatContext, build_chat_graph, sqlite_checkpointer
from memory import Store


@pytest.fixture
def store(home):
    s = Store.open(home)
    yield s
    s.close()


def context(store, backend, **kw):
    return ChatContext(store=store, backend=backend, system_prompt="Be brief.", options=GenerationOptions(max_new_tokens=5), **kw)


def turn(graph, ctx, thread_id, text, user="ana", **extra):
    state = {"messages": [{"role": "user", "content": text}], "user": user, "recall": True, "started_at": 0.0,
             "memories": [], "verdicts": [], "turn_ids": {}, **extra}
    return graph.invoke(state, {"configurable": {"thread_id": thread_id}}, context=ctx)


def test_a_turn_recalls_responds_verifies_and_logs(store, tiny_backend):
    store.add_experiences(["My dog is called Pimento."], "taught", "ana")
    thread = store.create_thread("ana")
    graph = build_chat_graph(InMemorySaver())
    final = turn(graph, context(store, tiny_backend), thread.id, "What is my dog called?")

    assert [m["text"] for m in final["memories"]] == ["My dog is called Pimento."]
    assert final["reply"]["model_version"] == "base"
    assert final["verdicts"] == []  # the verify slot has no verifier yet, and invents nothing
    said, answered = store.list_turns(thread_id=thread.id)
    assert (said.role, said.content) == ("user", "What is my dog called?")
    assert (answered.id, answered.content) == (final["turn_ids"]["assistant"], final["reply"]["text"])
    assert answered.prompt_tokens == final["reply"]["prompt_tokens"] > 0


def test_memories_of_another_user_are_never_recalled(store, tiny_backend):
    store.add_experiences(["My dog is called Pimento."], "taught", "bob")
    thread = store.create_thread("ana")
    final = turn(build_chat_graph(InMemorySaver()), context(store, tiny_backend), thread.id, "What is my dog called?")
    assert final["memories"] == []


def test_history_accumulates_per_thread(store, tiny_backend):
    graph, ctx = build_chat_graph(InMemorySaver()), context(store, tiny_backend)
    a, b = store.create_thread("ana"), store.create_thread("ana")
    turn(graph, ctx, a.id, "first")
    final = turn(graph, ctx, a.id, "second")
    assert [m["content"] for m in final["messages"] if m["role"] == "user"] == ["first", "second"]
    assert len(turn(graph, ctx, b.id, "elsewhere")["messages"]) == 2


def test_the_verify_slot_runs_each_configured_verifier(store, tiny_backend):
    # A scripted verifier: this checks the slot's wiring, not any verdict logic.
    seen = []

    def length_check(state, ctx):
        seen.append(state["reply"]["text"])
        return {"name": "length", "ok": len(state["reply"]["text"]) < 1000}

    ctx = context(store, tiny_backend, verifiers=[length_check, lambda state, ctx: None])
    final = turn(build_chat_graph(InMemorySaver()), ctx, store.create_thread("ana").id, "hi")
    assert final["verdicts"] == [{"name": "length", "ok": True}]
    assert seen == [final["reply"]["text"]]


def test_the_reply_streams_to_the_context_callback(store, tiny_backend):
    chunks = []
    ctx = context(store, tiny_backend, on_text=chunks.append)
    final = turn(build_chat_graph(InMemorySaver()), ctx, store.create_thread("ana").id, "hi")
    assert chunks and "".join(chunks).strip() == final["reply"]["text"]


def test_the_sqlite_checkpointer_keeps_threads_across_connections(store, tiny_backend, home):
    ctx = context(store, tiny_backend)
    thread = store.create_thread("ana")
    turn(build_chat_graph(sqlite_checkpointer(home / "cp.db")), ctx, thread.id, "first")
    final = turn(build_chat_graph(sqlite_checkpointer(home / "cp.db")), ctx, thread.id, "second")
    assert [m["content"] for m in final["messages"] if m["role"] == "user"] == ["first", "second"]
