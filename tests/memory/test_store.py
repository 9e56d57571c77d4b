import sqlite3

import pytest

from agent.errors import InvalidInput, NotFound, StoreError
from memory import NewTurn, Store
from memory.episodic import EpisodicMemory


@pytest.fixture
def store(home):
    s = Store.open(home)
    yield s
    s.close()


def exchange(store, thread, question="What is 2+2?", answer="4"):
    return store.record_turns(
        NewTurn(thread_id=thread.id, user=thread.user, role="user", content=question),
        NewTurn(thread_id=thread.id, user=thread.user, role="assistant", content=answer, model_version="base"),
    )


def test_turns_are_logged_in_order_and_limited_to_the_latest(store):
    thread = store.create_thread("ana")
    for i in range(3):
        exchange(store, thread, f"q{i}", f"a{i}")
    turns = store.list_turns(thread_id=thread.id)
    assert [t.content for t in turns] == ["q0", "a0", "q1", "a1", "q2", "a2"]
    assert [t.content for t in store.list_turns(thread_id=thread.id, limit=2)] == ["q2", "a2"]
    assert store.get_turn(turns[1].id).model_version == "base"
    with pytest.raises(NotFound):
        store.get_turn(999)
    with pytest.raises(NotFound):
        store.get_thread("nope")


def test_feedback_is_stored_against_its_turn(store):
    thread = store.create_thread("ana")
    _, answer = exchange(store, thread)
    store.record_feedback(answer.id, "preference", "ana", {"chosen": "4", "rejected": "5"})
    store.record_feedback(answer.id, "down", "bob")
    got = store.list_feedback(turn_id=answer.id)
    assert [(f.kind, f.user, f.payload) for f in got] == [
        ("preference", "ana", {"chosen": "4", "rejected": "5"}),
        ("down", "bob", None),
    ]
    with pytest.raises(NotFound):
        store.record_feedback(12345, "up", "ana")
    with pytest.raises(InvalidInput):
        store.record_feedback(answer.id, "meh", "ana")
    assert len(store.list_feedback()) == 2


def test_teaching_is_atomic_when_indexing_fails(store, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(EpisodicMemory, "add", broken)
    with pytest.raises(RuntimeError):
        store.add_experiences(["one", "two"], "taught", "ana")
    assert store.list_experiences() == []


def test_a_turn_survives_when_indexing_fails(store, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("index down")

    monkeypatch.setattr(EpisodicMemory, "add", broken)
    thread = store.create_thread("ana")
    exchange(store, thread, "remember me")
    assert [t.content for t in store.list_turns()] == ["remember me", "4"]
    assert "reindex" in caplog.text
    monkeypatch.undo()
    assert store.reindex() == 1
    assert store.search("remember me", user="ana", kinds=("turn",), statuses=None)[0].text == "remember me"


def test_nested_transactions_commit_or_roll_back_together(store):
    with pytest.raises(ValueError):
        with store.transaction():
            store.create_thread("ana")
            with store.transaction():
                store.add_experiences(["x"], "taught", "ana")
            raise ValueError("abort")
    assert store.list_threads() == [] and store.list_experiences() == []


def test_forgotten_experiences_leave_search_but_keep_their_row(store):
    first, second = store.add_experiences(["My dog is Pimento.", "I live in Port Halvik."], "taught", "ana")
    assert store.search("what is my dog called", user="ana", k=1)[0].id == first.id
    store.set_experience_status(first.id, "forgotten")
    assert first.id not in [h.id for h in store.search("what is my dog called", user="ana")]
    assert store.get_experience(first.id).status == "forgotten"
    store.set_experience_status(second.id, "consolidated")
    assert store.search("where do I live", user="ana") == []  # recall takes short-term only
    assert store.search("where do I live", user="ana", statuses=None)[0].id == second.id


def test_a_locked_database_is_one_store_error(home):
    store = Store.open(home, timeout_s=0.2)
    blocker = sqlite3.connect(home / "reverie.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked by another process"):
            store.create_thread("ana")
    finally:
        blocker.execute("ROLLBACK")
    assert store.create_thread("ana").user == "ana"  # fine once the lock is gone
    assert len(store.list_threads()) == 1
