"""One Chroma collection in its own folder, safe to share between processes.

Chroma's embedded mode lets several processes write one folder safely, but a process that
opened it earlier keeps a stale in-memory index: it misses the others' new entries, and a
filtered query can even fail with "Error finding id" (measured with chromadb 1.5.9). So every
write here bumps a generation counter in a file beside the collection, and a process reopens
its client (about 30 ms) before a read whenever another process has written. Reads hold the
same file lock as writes: checking the counter and then querying without it let another
process write in between, which failed a CI run. Callers embed before they take the lock, so
the lock is held only for the index lookup itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from filelock import FileLock

from agent.errors import StoreError


class SharedCollection:
    """Subclasses name their ``collection``; entries are embedded with the packaged MiniLM."""

    collection = ""

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
                self.collection,
                embedding_function=MiniLMEmbeddingFunction(),
                metadata={"hnsw:space": "cosine"},
            )
        except (OSError, ValueError, chromadb.errors.ChromaError) as exc:
            raise StoreError(f"cannot open the index in {self.folder}: {exc}") from exc

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

    @staticmethod
    def embed(texts: Sequence[str]) -> list:
        """The vectors of ``texts`` (the slow part of a write: seconds on a busy CPU); compute them
        before taking a lock that others wait on."""
        from memory.embedding import embed

        return embed(list(texts))

    def count(self) -> int:
        return self._read(lambda col: col.count())
