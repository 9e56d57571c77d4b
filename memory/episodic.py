"""Episodic memory: experiences and user turns in an embedded Chroma collection, searched per user.

Chroma's embedded mode lets several processes write one folder safely, but a process that
opened it earlier keeps a stale in-memory index: it misses the others' new entries, and a
filtered query can even fail with "Error finding id" (measured with chromadb 1.5.9). So every
write here bumps a generation counter in a file beside the collection, and a process reopens
its client (about 30 ms) before a read whenever another process has written. Reads hold the
same file lock as writes: checking the counter and then querying without it let another
process write in between, which failed a CI run. The query is embedded before the lock is
taken, so the lock is held only for the index lookup itself.

Every query filters on the user: one user's memories are never returned for another.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from filelock import FileLock

from agent.errors import StoreError
from memory.records import Hit

Kind = Literal["experience", "turn"]
COLLECTION = "reverie-memories"


class EpisodicMemory:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._client = None
        self._col = None
        self._seen = -1  # the generation our client reflects

    # -- opening and staying fresh -------------------------------------------------------

    def _generation(self) -> int:
        try:
            return int((self.folder / ".generation").read_text() or 0)
        except FileNotFoundError:
            return 0

    def _collection(self):
        current = self._generation()
        if self._col is None or current != self._seen:
            self._open()
            self._seen = current
        return self._col

    def _open(self) -> None:
        import chromadb
        from chromadb.config import Settings

        from memory.embedding import MiniLMEmbeddingFunction

        self.close()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._client = chromadb.PersistentClient(
                path=str(self.folder), settings=Settings(anonymized_telemetry=False)
            )
            self._col = self._client.get_or_create_collection(
                COLLECTION,
                embedding_function=MiniLMEmbeddingFunction(),
                metadata={"hnsw:space": "cosine"},
            )
        except (OSError, ValueError, chromadb.errors.ChromaError) as exc:
            raise StoreError(f"cannot open episodic memory in {self.folder}: {exc}") from exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._col = None

    def _lock(self) -> FileLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.folder / ".write.lock"))

    def _write(self, action) -> None:
        """Run one write under the folder's lock and tell other processes it happened."""
        with self._lock():
            action(self._collection())
            generation = self._generation() + 1
            (self.folder / ".generation").write_text(str(generation))
            self._seen = generation  # our own write: our client already reflects it

    def _read(self, action):
        """Run one read under the folder's lock, on a client that reflects every write so far."""
        with self._lock():
            return action(self._collection())

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

    @staticmethod
    def embed(texts: Sequence[str]) -> list:
        """The vectors ``add`` indexes ``texts`` with (the slow part of a write: seconds on a busy CPU)."""
        from memory.embedding import embed

        return embed(list(texts))

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

    def count(self) -> int:
        return self._read(lambda col: col.count())


def _key(kind: Kind, record_id: int) -> str:
    return f"{kind}-{record_id}"
