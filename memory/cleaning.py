"""Cleaned views of the feedback: each cleaning run is one version of the view, with a decision
(keep / flip / remove, and why) for every feedback item it covers; the raw feedback is never
touched (the feedback table is append-only, enforced by SQLite). Also the committee's cache.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from memory.db import now
from memory.store import Store


class Cleaning:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- the committee's cache -------------------------------------------------------------

    def get(self, member: str, item: str) -> dict | None:
        rows = self.store.query("SELECT vote FROM committee_cache WHERE member = ? AND item = ?", (member, item))
        return json.loads(rows[0]["vote"]) if rows else None

    def put(self, member: str, item: str, judged: dict) -> None:
        with self.store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO committee_cache (member, item, vote) VALUES (?, ?, ?)",
                       (member, item, json.dumps(judged)))

    # -- runs (versions of the view) --------------------------------------------------------

    def record_run(self, method: str, committee: Sequence[str], upto: int, decisions: Sequence[dict],
                   mode: str = "clean", mode_reason: str | None = None) -> int:
        """Write one view: ``decisions`` rows have feedback_id, action (applied), proposed (the
        committee's; differs only in audit mode), bin, category, reason, votes."""
        counts = {a: sum(d["action"] == a for d in decisions) for a in ("keep", "flip", "remove")}
        with self.store.transaction() as db:
            run_id = db.execute(
                "INSERT INTO cleaning_runs (method, committee, upto_feedback_id, counts, created_at, mode, mode_reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (method, json.dumps(list(committee)), upto, json.dumps(counts), now(), mode, mode_reason),
            ).lastrowid
            db.executemany(
                "INSERT INTO cleaning_decisions (run_id, feedback_id, action, bin, category, reason, votes, proposed) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, d["feedback_id"], d["action"], d["bin"], d["category"], d["reason"], json.dumps(d["votes"]),
                  d.get("proposed", d["action"])) for d in decisions],
            )
        return run_id

    def runs(self) -> list[dict[str, Any]]:
        rows = self.store.query("SELECT * FROM cleaning_runs ORDER BY id")
        return [{**r, "committee": json.loads(r["committee"]), "counts": json.loads(r["counts"])} for r in rows]

    def latest(self, method: str | None = None, committee: Sequence[str] | None = None) -> dict | None:
        """The newest run (of this method and committee, when given)."""
        for run in reversed(self.runs()):
            if (method is None or run["method"] == method) and (committee is None or run["committee"] == list(committee)):
                return run
        return None

    def decisions(self, run_id: int) -> list[dict[str, Any]]:
        rows = self.store.query("SELECT feedback_id, action, proposed, bin, category, reason, votes "
                                "FROM cleaning_decisions WHERE run_id = ? ORDER BY feedback_id", (run_id,))
        return [{**r, "proposed": r["proposed"] or r["action"], "votes": json.loads(r["votes"])} for r in rows]
