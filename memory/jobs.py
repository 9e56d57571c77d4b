"""Background runs (a night on a schedule or on request), one row each, claimed under a lease.

Exactly once, across processes: a run is identified by (kind, run_key, attempt), unique in the
table; the run key of a scheduled night is the time it was scheduled for, so two ``reverie
serve`` on one home that both fire the same night both try to insert the same row, and only the
one whose insert lands runs it. A running row carries a lease that its runner renews; a row
found ``running`` with an expired lease was abandoned (its process died) and is marked
``interrupted``, and an interrupted first attempt is queued once more (attempt 2).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from agent.errors import NotFound
from memory.db import now
from memory.records import Job
from memory.store import Store

LIVE = ("scheduled", "running")


def _later(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


class Jobs:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- reading -------------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        rows = self.store.query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            raise NotFound(f"no job {job_id}; `reverie jobs list` shows them")
        return _job(rows[0])

    def list(self, limit: int | None = None, statuses: tuple[str, ...] | None = None) -> list[Job]:
        where = f"WHERE status IN ({','.join('?' * len(statuses))})" if statuses else ""
        rows = self.store.query(f"SELECT * FROM jobs {where} ORDER BY id DESC LIMIT ?",
                                (*(statuses or ()), -1 if limit is None else limit))
        return [_job(r) for r in rows]

    def last(self, kind: str, status: str) -> Job | None:
        rows = self.store.query("SELECT * FROM jobs WHERE kind = ? AND status = ? ORDER BY id DESC LIMIT 1",
                                (kind, status))
        return _job(rows[0]) if rows else None

    # -- writing -------------------------------------------------------------------------

    def enqueue(self, kind: str, trigger: str, run_key: str, attempt: int = 1) -> Job | None:
        """A run to start soon ('scheduled'); None if this run (key and attempt) exists already."""
        with self.store.transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO jobs (kind, trigger, run_key, attempt, status, created_at) "
                "VALUES (?, ?, ?, ?, 'scheduled', ?)", (kind, trigger, run_key, attempt, now()))
            job_id = cursor.lastrowid if cursor.rowcount else None
        return self.get(job_id) if job_id else None

    def start(self, job_id: int, owner: str, lease_s: float) -> Job | None:
        """Claim a scheduled run; None if another process claimed it first."""
        with self.store.transaction() as db:
            cursor = db.execute(
                "UPDATE jobs SET status = 'running', owner = ?, lease_until = ?, started_at = ? "
                "WHERE id = ? AND status = 'scheduled'", (owner, _later(lease_s), now(), job_id))
            claimed = bool(cursor.rowcount)
        return self.get(job_id) if claimed else None

    def renew(self, job_id: int, owner: str, lease_s: float) -> bool:
        with self.store.transaction() as db:
            cursor = db.execute("UPDATE jobs SET lease_until = ? WHERE id = ? AND owner = ? AND status = 'running'",
                                (_later(lease_s), job_id, owner))
            return bool(cursor.rowcount)

    def finish(self, job_id: int, owner: str, status: str, report: dict[str, Any] | None = None,
               error: str | None = None) -> Job:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE jobs SET status = ?, report = ?, error = ?, finished_at = ?, lease_until = NULL "
                "WHERE id = ? AND owner = ? AND status = 'running'",
                (status, json.dumps(report) if report is not None else None, error, now(), job_id, owner))
        return self.get(job_id)

    def expire(self, gone: Callable[[str], bool] = lambda owner: False) -> list[Job]:
        """Mark 'interrupted' the runs whose lease ran out, or whose owner is ``gone`` (a process
        known dead), and queue a first attempt's one retry. Returns the retries queued."""
        stamp = now()
        with self.store.transaction() as db:
            running = [_job(r) for r in db.execute("SELECT * FROM jobs WHERE status = 'running'").fetchall()]
            dead = [j for j in running if (j.lease_until or "") < stamp or gone(j.owner or "")]
            for job in dead:
                db.execute("UPDATE jobs SET status = 'interrupted', finished_at = ?, lease_until = NULL, "
                           "error = 'its process stopped before it finished' WHERE id = ?", (stamp, job.id))
        retries = []
        for job in dead:
            if job.attempt == 1 and (retry := self.enqueue(job.kind, "retry", job.run_key, attempt=2)):
                retries.append(retry)
        return retries


def _job(row) -> Job:
    return Job(**{**dict(row), "report": json.loads(row["report"]) if row["report"] else None})
