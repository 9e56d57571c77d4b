"""The tastes read from one user's adapters (``graphs.taste``), kept in SQLite by what was read.

Reading costs seconds a catalogue (every genre and tag scored with and without each adapter), and
its result changes only when the adapters or the catalogue do, so a night reads it once and every
later recommendation, in this process or another, finds it here. One user's view: it neither
finds nor writes another user's rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping
from typing import Any

from memory.db import now
from memory.store import Store


class TastesRead(MutableMapping[str, list[dict[str, Any]]]):
    """key (``graphs.taste.key``) -> the tastes read from ``user``'s adapters."""

    def __init__(self, store: Store, user: str) -> None:
        self.store, self.user = store, user

    def __getitem__(self, key: str) -> list[dict[str, Any]]:
        rows = self.store.query("SELECT tastes FROM tastes_read WHERE key = ? AND user = ?", (key, self.user))
        if not rows:
            raise KeyError(key)
        return json.loads(rows[0]["tastes"])

    def __setitem__(self, key: str, tastes: list[dict[str, Any]]) -> None:
        catalogue = json.loads(key)[3]  # graphs.taste.key: [model, adapters, without, catalogue, imported_at]
        with self.store.transaction() as db:
            db.execute("INSERT INTO tastes_read (key, user, catalogue, tastes, created_at) VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT (user, key) DO UPDATE SET tastes = excluded.tastes, created_at = excluded.created_at",
                       (key, self.user, catalogue, json.dumps(tastes), now()))

    def __delitem__(self, key: str) -> None:
        with self.store.transaction() as db:
            if not db.execute("DELETE FROM tastes_read WHERE key = ? AND user = ?", (key, self.user)).rowcount:
                raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        rows = self.store.query("SELECT key FROM tastes_read WHERE user = ? ORDER BY created_at", (self.user,))
        return iter([r["key"] for r in rows])

    def __len__(self) -> int:
        return self.store.query("SELECT COUNT(*) AS n FROM tastes_read WHERE user = ?", (self.user,))[0]["n"]

    def clear(self) -> None:
        """Every row of the user: after a forget, nothing read from an adapter that held the forgotten
        experience survives it."""
        with self.store.transaction() as db:
            db.execute("DELETE FROM tastes_read WHERE user = ?", (self.user,))
