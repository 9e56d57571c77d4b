"""The experience log: the one writer of threads, turns, feedback and experiences.

SQLite (``reverie.db``) is the source of truth; episodic memory (Chroma) is an index of it that
``reindex`` can always rebuild. Two rules keep the two consistent without losing anything:

- A taught experience is written to SQLite and the index inside one transaction: if indexing
  fails, nothing was taught and the caller gets an error (nothing half-written).
- A turn is committed to SQLite first and indexed after: if indexing fails, the turn is kept
  (nothing the user said is lost) and a warning says to run ``reverie memory reindex``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from agent.errors import InvalidInput, NotFound, StoreError
from memory.db import connect, immediate, now, store_error
from memory.episodic import EpisodicMemory
from memory.migrations import migrate
from memory.records import (
    Experience,
    ExperienceSource,
    ExperienceStatus,
    Feedback,
    FeedbackKind,
    Hit,
    NewTurn,
    Thread,
    Turn,
)

log = logging.getLogger(__name__)
FEEDBACK_KINDS = ("up", "down", "correction", "preference", "comment")
EXPERIENCE_SOURCES = ("taught", "extracted", "correction")
MAX_INTEGER = 2**63 - 1  # SQLite's


class Store:
    def __init__(self, db_path: Path, index: EpisodicMemory, timeout_s: float = 10.0) -> None:
        self.path = db_path
        self.index = index
        self.db = connect(db_path, timeout_s)
        self._lock = threading.RLock()  # one connection, shared by the threads of a server
        self._depth = 0  # nesting of transaction(): only the outermost begins and commits
        migrate(self.db, db_path)

    @classmethod
    def open(cls, home: Path, timeout_s: float = 10.0) -> Store:
        return cls(home / "reverie.db", EpisodicMemory(home / "episodic"), timeout_s)

    def close(self) -> None:
        self.index.close()
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write; nested calls join the outer one (a correction is feedback + experience)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.db
                finally:
                    self._depth -= 1
                return
            with immediate(self.db, self.path) as db:
                self._depth = 1
                try:
                    yield db
                finally:
                    self._depth = 0

    def query(self, sql: str, params: Sequence = ()) -> list[sqlite3.Row]:
        """Rows of a read-only query; SQLite failures become one StoreError line."""
        try:
            return self.db.execute(sql, params).fetchall()
        except OverflowError:  # an integer beyond SQLite's 64 bits names no row
            return []
        except sqlite3.Error as exc:
            raise store_error(exc, self.path) from exc

    # -- threads -------------------------------------------------------------------------

    def create_thread(self, user: str, thread_id: str | None = None) -> Thread:
        """A new thread, under ``thread_id`` when given (LangGraph's convention: a client names its
        own thread). If another process created that id first, theirs is returned."""
        thread = Thread(id=thread_id or uuid.uuid4().hex[:12], user=user, created_at=now())
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO threads VALUES (?, ?, ?)", (thread.id, thread.user, thread.created_at))
        return self.get_thread(thread.id)

    def find_thread(self, thread_id: str) -> Thread | None:
        rows = self.query("SELECT * FROM threads WHERE id = ?", (thread_id,))
        return Thread(**rows[0]) if rows else None

    def get_thread(self, thread_id: str) -> Thread:
        thread = self.find_thread(thread_id)
        if thread is None:
            raise NotFound(f"no thread {thread_id!r}; `reverie log` lists threads")
        return thread

    def list_threads(self, user: str | None = None) -> list[Thread]:
        where, params = _where(user=user)
        return [Thread(**r) for r in self.query(f"SELECT * FROM threads {where} ORDER BY created_at", params)]

    # -- turns ---------------------------------------------------------------------------

    def record_turns(self, *turns: NewTurn) -> list[Turn]:
        """Write turns in one transaction, then index the user turns for search."""
        stamp = now()
        written = []
        with self.transaction() as db:
            for t in turns:
                cur = db.execute(
                    """INSERT INTO turns (thread_id, user, role, content, model_version, latency_s,
                       prompt_tokens, completion_tokens, verdicts, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (t.thread_id, t.user, t.role, t.content, t.model_version, t.latency_s,
                     t.prompt_tokens, t.completion_tokens, json.dumps(t.verdicts) if t.verdicts else None, stamp),
                )
                written.append(Turn(id=cur.lastrowid, created_at=stamp, **t.model_dump()))
        said = [t for t in written if t.role == "user"]
        try:
            self._index_turns(said)
        except Exception as exc:  # the turn is safe in SQLite; only its search entry is missing
            log.warning("turn %s is saved but not indexed (%s); run `reverie memory reindex`", said[0].id, exc)
        return written

    def _index_turns(self, turns: Sequence[Turn]) -> None:
        self.index.add(
            "turn",
            [t.id for t in turns],
            [t.content for t in turns],
            [t.user for t in turns],
            thread_id=[t.thread_id for t in turns],
        )

    def get_turn(self, turn_id: int) -> Turn:
        rows = self.query("SELECT * FROM turns WHERE id = ?", (turn_id,))
        if not rows:
            raise NotFound(f"no turn {turn_id}; `reverie log` shows turn ids")
        return _turn(rows[0])

    def list_turns(self, thread_id: str | None = None, user: str | None = None, limit: int | None = None) -> list[Turn]:
        """Turns oldest first; with ``limit``, the most recent ``limit`` of them."""
        where, params = _where(thread_id=thread_id, user=user)
        limit = min(limit, MAX_INTEGER) if limit else None  # more than SQLite counts: all of them
        sql = f"SELECT * FROM turns {where} ORDER BY id DESC" + (" LIMIT ?" if limit else "")
        rows = self.query(sql, (*params, limit) if limit else params)
        return [_turn(r) for r in reversed(rows)]

    # -- feedback ------------------------------------------------------------------------

    def record_feedback(self, turn_id: int | None, kind: FeedbackKind, user: str, payload: dict | None = None,
                        source: str = "user") -> Feedback:
        """Append one piece of feedback; ``turn_id`` None only for a preference pair that brings its own prompt."""
        return self.record_feedback_many([(turn_id, kind, user, payload, source)])[0]

    def record_feedback_many(self, rows: Sequence[tuple]) -> list[Feedback]:
        """Append (turn_id, kind, user, payload, source) rows in one transaction: all or none."""
        for turn_id, kind, *_ in rows:
            if kind not in FEEDBACK_KINDS:
                raise InvalidInput(f"feedback kind must be one of {', '.join(FEEDBACK_KINDS)}, not {kind!r}")
            if turn_id is None and kind != "preference":
                raise InvalidInput(f"{kind} feedback must point at a turn")
        for turn_id in {r[0] for r in rows if r[0] is not None}:
            self.get_turn(turn_id)
        stamp, written = now(), []
        with self.transaction() as db:
            for turn_id, kind, user, payload, source in rows:
                cur = db.execute(
                    "INSERT INTO feedback (turn_id, kind, payload, user, source, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (turn_id, kind, json.dumps(payload) if payload is not None else None, user, source, stamp),
                )
                written.append(Feedback(id=cur.lastrowid, turn_id=turn_id, kind=kind, payload=payload, user=user,
                                        source=source, created_at=stamp))
        return written

    def list_feedback(self, turn_id: int | None = None, user: str | None = None) -> list[Feedback]:
        where, params = _where(turn_id=turn_id, user=user)
        rows = self.query(f"SELECT * FROM feedback {where} ORDER BY id", params)
        return [Feedback(**{**r, "payload": json.loads(r["payload"]) if r["payload"] else None}) for r in rows]

    def get_feedback(self, feedback_id: int) -> Feedback:
        rows = self.query("SELECT * FROM feedback WHERE id = ?", (feedback_id,))
        if not rows:
            raise NotFound(f"no feedback {feedback_id}; `reverie feedback list` shows feedback ids")
        r = rows[0]
        return Feedback(**{**r, "payload": json.loads(r["payload"]) if r["payload"] else None})

    # -- experiences ---------------------------------------------------------------------

    def add_experiences(
        self, texts: Iterable[str], source: ExperienceSource, user: str, turn_id: int | None = None
    ) -> list[Experience]:
        """Write and index experiences atomically: all of them, or (on any error) none.

        The texts are embedded first, outside the write transaction: under load that takes tens of
        seconds, and every other writer (a turn, feedback) would wait for SQLite's lock meanwhile.
        """
        if source not in EXPERIENCE_SOURCES:
            raise InvalidInput(f"experience source must be one of {', '.join(EXPERIENCE_SOURCES)}")
        texts = list(texts)
        vectors = self.index.embed(texts)
        stamp = now()
        with self.transaction() as db:
            added = []
            for text in texts:
                cur = db.execute(
                    """INSERT INTO experiences (text, source, user, status, turn_id, created_at, updated_at)
                       VALUES (?, ?, ?, 'short_term', ?, ?, ?)""",
                    (text, source, user, turn_id, stamp, stamp),
                )
                added.append(
                    Experience(id=cur.lastrowid, text=text, source=source, user=user, status="short_term",
                               turn_id=turn_id, created_at=stamp, updated_at=stamp)
                )
            self._index_experiences(added, vectors)  # raising here rolls the rows back
        return added

    def _index_experiences(self, experiences: Sequence[Experience], vectors: list | None = None) -> None:
        self.index.add(
            "experience",
            [e.id for e in experiences],
            [e.text for e in experiences],
            [e.user for e in experiences],
            vectors=vectors,
            status=[e.status for e in experiences],
            source=[e.source for e in experiences],
        )

    def get_experience(self, experience_id: int) -> Experience:
        rows = self.query("SELECT * FROM experiences WHERE id = ?", (experience_id,))
        if not rows:
            raise NotFound(f"no experience {experience_id}; `reverie memory list` shows ids")
        return Experience(**rows[0])

    def list_experiences(
        self, user: str | None = None, statuses: Sequence[ExperienceStatus] | None = None
    ) -> list[Experience]:
        where, params = _where(user=user)
        if statuses:
            where += (" AND" if where else "WHERE") + f" status IN ({', '.join('?' * len(statuses))})"
            params = (*params, *statuses)
        return [Experience(**r) for r in self.query(f"SELECT * FROM experiences {where} ORDER BY id", params)]

    def turns_made_experiences(self) -> set[int]:
        """The chat turns an experience was already made from (extracted, or a correction's turn)."""
        return {r["turn_id"] for r in self.query("SELECT turn_id FROM experiences WHERE turn_id IS NOT NULL")}

    def corrections_behind(self, experience_ids: Sequence[int]) -> list[int]:
        """The correction feedback each of these experiences was made from (for a version's provenance)."""
        if not experience_ids:
            return []
        rows = self.query(
            "SELECT f.id FROM feedback f JOIN experiences e ON e.turn_id = f.turn_id AND e.source = 'correction' "
            f"WHERE f.kind = 'correction' AND e.id IN ({', '.join('?' * len(experience_ids))}) ORDER BY f.id",
            list(experience_ids))
        return [r["id"] for r in rows]

    def set_experience_status(self, experience_id: int, status: ExperienceStatus) -> Experience:
        """Move an experience along short_term -> consolidated, or to forgotten (never recalled again).

        A forgotten experience keeps its row, for the audit trail, but leaves the search index.
        """
        self.get_experience(experience_id)
        with self.transaction() as db:
            db.execute(
                "UPDATE experiences SET status = ?, updated_at = ? WHERE id = ?", (status, now(), experience_id)
            )
            if status == "forgotten":
                self.index.delete("experience", [experience_id])
            else:
                self.index.set_status("experience", experience_id, status)
        return self.get_experience(experience_id)

    # -- the index -----------------------------------------------------------------------

    def search(self, query: str, **kwargs) -> list[Hit]:
        try:
            return self.index.search(query, **kwargs)
        except StoreError:
            raise
        except Exception as exc:  # chromadb raises its own types, unknown ones included
            raise StoreError(f"episodic memory search failed: {exc}; try `reverie memory reindex`") from exc

    def reindex(self) -> int:
        """Rebuild episodic memory from the log; returns how many entries it now holds."""
        experiences = [e for e in self.list_experiences() if e.status != "forgotten"]
        turns = [t for t in self.list_turns() if t.role == "user"]
        self.index.clear()
        for start in range(0, len(experiences), 256):
            self._index_experiences(experiences[start : start + 256])
        for start in range(0, len(turns), 256):
            self._index_turns(turns[start : start + 256])
        return len(experiences) + len(turns)


def _turn(row: dict) -> Turn:
    return Turn(**{**row, "verdicts": json.loads(row["verdicts"]) if row["verdicts"] else []})


def _where(**filters) -> tuple[str, tuple]:
    """A WHERE clause for the filters that are not None."""
    used = {k: v for k, v in filters.items() if v is not None}
    if not used:
        return "", ()
    return "WHERE " + " AND ".join(f"{k} = ?" for k in used), tuple(used.values())
