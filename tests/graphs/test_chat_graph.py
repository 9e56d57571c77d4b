"""The chat graph on the tiny random model, a real store, and LangGraph's in-memory saver."""

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from agent.llm import GenerationOptions
from graphs.chat import ChatContext, Verification, build_chat_graph, sqlite_checkpointer
from graphs.verify.nodes import ChoiceCheck, CodeCheck
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
    assert final["verdicts"] == []  # no verifier configured: the slot invents nothing
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
    # Scripted verifiers: this checks the slot's wiring, not any verdict logic.
    seen = []

    def length_check(state, ctx):
        seen.append(state["reply"]["text"])
        return Verification({"name": "length", "ok": len(state["reply"]["text"]) < 1000})

    def rewrite(state, ctx):
        return Verification({"name": "rewrite"}, {**state["reply"], "text": "REVISED " + state["reply"]["text"]})

    def sees_revision(state, ctx):
        return Verification({"name": "after", "saw": state["reply"]["text"][:8]})

    ctx = context(store, tiny_backend, verifiers=[length_check, lambda state, ctx: None, rewrite, sees_revision])
    thread = store.create_thread("ana")
    final = turn(build_chat_graph(InMemorySaver()), ctx, thread.id, "hi")
    assert final["verdicts"] == [{"name": "length", "ok": True}, {"name": "rewrite"}, {"name": "after", "saw": "REVISED "}]
    assert seen[0] != final["reply"]["text"] == "REVISED " + seen[0]
    # The kept reply is the one in the conversation and in the log, with the verdicts on it.
    assert final["messages"][-1] == {"role": "assistant", "content": final["reply"]["text"]}
    answered = store.list_turns(thread_id=thread.id)[-1]
    assert (answered.content, answered.verdicts) == (final["reply"]["text"], final["verdicts"])
    assert store.list_turns(thread_id=thread.id)[0].verdicts == []


def test_the_real_verifiers_in_the_graph_on_the_tiny_model(store, tiny_backend):
    # Wiring only: the tiny model's judgements are noise. A message with listed options gets a
    # choice verdict; the reply has no code, so the code check costs nothing and says nothing.
    ctx = context(store, tiny_backend, verifiers=[CodeCheck("binary", budget_s=30), ChoiceCheck()])
    final = turn(build_chat_graph(InMemorySaver()), ctx, store.create_thread("ana").id,
                 "Which is better for breakfast, porridge or toast?")
    [verdict] = final["verdicts"]
    assert verdict["kind"] == "choice" and verdict["options"] == ["porridge", "toast"]
    assert verdict["result"] in ("consistent", "inconsistent") and set(verdict["ranked"]) == {"porridge", "toast"}
    # Whichever way the noise falls, the reply carries the caution exactly when the check failed.
    assert final["reply"]["text"].startswith("I am not confident") == (verdict["result"] == "inconsistent")


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
