import sqlite3

import pytest

from agent.errors import StoreError
from memory.db import connect
from memory.migrations import MIGRATIONS, migrate
from memory.store import Store

TABLES = {"threads", "turns", "feedback", "experiences", "model_versions", "jobs", "active_versions",
          "version_events", "probes", "learn_runs", "trained_on", "probe_results", "training_pairs",
          "general_results", "cleaning_runs", "cleaning_decisions", "committee_cache", "catalogues", "catalogue_items", "tastes_read",
          "_migrations"}


def tables(conn):
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} - {"sqlite_sequence"}


def test_blank_database_gets_the_full_schema(tmp_path):
    conn = connect(tmp_path / "r.db")
    ran = migrate(conn, tmp_path / "r.db")
    assert ran == [m.__name__ for m in MIGRATIONS]
    assert tables(conn) == TABLES
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert migrate(conn, tmp_path / "r.db") == []  # idempotent


def test_oldest_schema_with_rows_upgrades_without_losing_any(tmp_path):
    path = tmp_path / "r.db"
    conn = connect(path)
    migrate(conn, path, upto=1)
    assert tables(conn) == {"threads", "turns", "_migrations"}
    conn.execute("INSERT INTO threads VALUES ('t1', 'ana', '2026-01-01')")
    conn.execute(
        "INSERT INTO turns (thread_id, user, role, content, created_at) VALUES ('t1', 'ana', 'user', 'hi', 'x')"
    )
    conn.close()

    conn = connect(path)
    assert len(migrate(conn, path)) == len(MIGRATIONS) - 1
    assert tables(conn) == TABLES
    assert conn.execute("SELECT content FROM turns").fetchall()[0][0] == "hi"


def test_constraints_hold(tmp_path):
    conn = connect(tmp_path / "r.db")
    migrate(conn, tmp_path / "r.db")
    with pytest.raises(sqlite3.IntegrityError):  # a turn must belong to a thread
        conn.execute("INSERT INTO turns (thread_id, user, role, content, created_at) VALUES ('x', 'u', 'user', 'c', 'n')")
    conn.execute("INSERT INTO threads VALUES ('t', 'u', 'n')")
    with pytest.raises(sqlite3.IntegrityError):  # roles are a closed set
        conn.execute("INSERT INTO turns (thread_id, user, role, content, created_at) VALUES ('t', 'u', 'bot', 'c', 'n')")


def test_corrupt_file_is_one_store_error(tmp_path):
    path = tmp_path / "reverie.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="corrupt or not a reverie database"):
        Store.open(tmp_path)


def test_feedback_survives_its_rebuild_and_becomes_append_only(tmp_path):
    path = tmp_path / "r.db"
    conn = connect(path)
    migrate(conn, path, upto=7)
    conn.execute("INSERT INTO threads VALUES ('t1', 'ana', 'x')")
    conn.execute("INSERT INTO turns (thread_id, user, role, content, created_at) VALUES ('t1', 'ana', 'assistant', 'a', 'x')")
    for kind in ("up", "down"):
        conn.execute("INSERT INTO feedback (turn_id, kind, payload, user, created_at) VALUES (1, ?, NULL, 'ana', 'x')", (kind,))
    conn.execute("DELETE FROM feedback WHERE id = 2")  # allowed before m008: the next id must still be 3
    migrate(conn, path)
    assert [tuple(r) for r in conn.execute("SELECT id, kind, source FROM feedback")] == [(1, "up", "user")]
    conn.execute("INSERT INTO feedback (turn_id, kind, user, created_at) VALUES (NULL, 'preference', 'ana', 'y')")
    assert conn.execute("SELECT max(id) FROM feedback").fetchone()[0] == 3
    for sql in ("UPDATE feedback SET kind = 'down'", "DELETE FROM feedback"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(sql)


def test_trained_on_keeps_its_rows_and_learns_the_refused_role(tmp_path):
    path = tmp_path / "r.db"
    conn = connect(path)
    migrate(conn, path, upto=10)  # before m011
    conn.execute("INSERT INTO experiences (text, source, user, created_at, updated_at) VALUES ('x', 'taught', 'ana', 'x', 'x')")
    conn.execute("INSERT INTO model_versions (id, base_model, created_at) VALUES ('base', 'm', 'x')")
    conn.execute("INSERT INTO learn_runs (base_model, parent, started_at) VALUES ('m', 'base', 'x')")
    conn.execute("INSERT INTO trained_on VALUES (1, 1, 'new')")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO trained_on VALUES (1, 1, 'refused')")  # before m011: not a role
    migrate(conn, path)
    assert [tuple(r) for r in conn.execute("SELECT * FROM trained_on")] == [(1, 1, "new")]
    conn.execute("INSERT INTO learn_runs (base_model, parent, started_at) VALUES ('m', 'base', 'y')")
    conn.execute("INSERT INTO trained_on VALUES (2, 1, 'refused')")
