"""Episodic memory: experiences and user turns in an embedded Chroma collection, searched per user.

The collection is shared between processes (``memory.index``). Every query filters on the
user: one user's memories are never returned for another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from memory.index import SharedCollection
from memory.records import Hit

Kind = Literal["experience", "turn"]


class EpisodicMemory(SharedCollection):
    collection = "reverie-memories"

    # -- writes --------------------------------------------------------------------------

    def add(self, kind: Kind, ids: Sequence[int], texts: Sequence[str], users: Sequence[str], *,
            vectors: list | None = None, **extra) -> None:
        """Index records; ``extra`` holds per-record metadata lists (status, thread_id). ``vectors``
        are the texts' embeddings when the caller computed them already (``embed``), before it
        took a lock that others wait on."""
        if not ids:
            return
        metadatas = [
            {"kind": kind, "user": user, **{key: values[i] for key, values in extra.items()}}
            for i, user in enumerate(users)
        ]
        vectors = vectors if vectors is not None else self.embed(texts)  # outside the folder's lock, too
        self._write(lambda col: col.upsert(ids=[_key(kind, i) for i in ids], documents=list(texts),
                                           embeddings=vectors, metadatas=metadatas))

    def set_status(self, kind: Kind, record_id: int, status: str) -> None:
        self._write(lambda col: col.update(ids=[_key(kind, record_id)], metadatas=[{"status": status}]))

    def delete(self, kind: Kind, ids: Sequence[int]) -> None:
        if ids:
            self._write(lambda col: col.delete(ids=[_key(kind, i) for i in ids]))

    def clear(self) -> None:
        """Drop every entry (before a rebuild from the log)."""

        def drop(col) -> None:
            existing = col.get(include=[])["ids"]
            if existing:
                col.delete(ids=existing)

        self._write(drop)

    # -- reads ---------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        user: str,
        k: int = 5,
        kinds: Sequence[Kind] = ("experience",),
        statuses: Sequence[str] | None = ("short_term",),
        min_score: float = -1.0,
    ) -> list[Hit]:
        from memory.embedding import embed

        clauses: list[dict] = [{"user": user}, {"kind": {"$in": list(kinds)}}]
        if statuses is not None:
            clauses.append({"status": {"$in": list(statuses)}})
        vector = embed([query])
        result = self._read(lambda col: col.query(query_embeddings=vector, n_results=k, where={"$and": clauses}))
        hits = []
        for key, text, meta, distance in zip(
            result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0]
        ):
            score = 1.0 - float(distance)  # cosine space: distance = 1 - similarity
            if score >= min_score:
                hits.append(Hit(kind=meta["kind"], id=int(key.split("-", 1)[1]), text=text, score=score, user=user))
        return hits


def _key(kind: Kind, record_id: int) -> str:
    return f"{kind}-{record_id}"
