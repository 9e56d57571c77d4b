"""Catalogues: the items a recommendation may name, as the user brought them.

A catalogue is a JSONL file, one item a line: ``id`` and ``title`` are required, every other
field is kept as given (``genres``, ``tags``, ``year``, ``runtime_min``, ``rating``,
``language``, ``description``, ``popularity``, or anything else). Rows live in SQLite; the
items' text (title, description, genres, tags) is embedded into a Chroma index of its own
folder, so retrieval never mixes two catalogues.

An import is all or nothing. Every bad line is reported by its number before anything is
written; the index is built in a fresh folder first (the slow part, no lock held) and the rows
are committed after it, pointing at that folder, so a failed or interrupted import leaves the
previous catalogue of that name served as it was.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from agent.errors import InvalidInput, NotFound, StoreError
from memory.db import now
from memory.index import SharedCollection
from memory.records import Catalogue, CatalogueItem
from memory.store import Store

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TEXT_FIELDS = ("genres", "genre", "tags", "keywords", "description", "summary", "overview", "plot")
MAX_ERRORS = 10  # bad lines named in the error; the count says how many more
BATCH = 2048  # items indexed at a time
EMBED_BATCH = 256  # items embedded in one forward pass: long descriptions x 2048 would take gigabytes


class CatalogueIndex(SharedCollection):
    collection = "reverie-catalogue"

    def add(self, positions: Sequence[int], vectors: list) -> None:
        self._write(lambda col: col.upsert(ids=[f"i{p}" for p in positions], embeddings=vectors))

    def nearest(self, vectors: list, k: int) -> list[list[tuple[int, float]]]:
        """For each query vector, the ``k`` nearest items as (position, cosine similarity)."""
        found = self._read(lambda col: col.query(query_embeddings=vectors, n_results=min(k, col.count()) or 1,
                                                 include=["distances"]))
        return [[(int(key[1:]), 1.0 - float(d)) for key, d in zip(keys, distances)]
                for keys, distances in zip(found["ids"], found["distances"])]

    def vectors(self, positions: Sequence[int]) -> dict[int, list[float]]:
        got = self._read(lambda col: col.get(ids=[f"i{p}" for p in positions], include=["embeddings"]))
        return {int(key[1:]): list(vector) for key, vector in zip(got["ids"], got["embeddings"])}


def item_text(item: CatalogueItem) -> str:
    """What retrieval matches a conversation against: the title and the descriptive fields."""
    parts = [item.title]
    for key in TEXT_FIELDS:
        value = item.fields.get(key)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        if value:
            parts.append(str(value))
    return ". ".join(parts)


def read_items(data: bytes, source: str = "input") -> list[CatalogueItem]:
    """Items of a JSONL file; every bad line is named (by number) in one ``InvalidInput``."""
    items: list[CatalogueItem] = []
    first_line: dict[str, int] = {}
    errors: list[str] = []
    for number, raw in enumerate(data.splitlines(), 1):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            errors.append(f"line {number}: not UTF-8 (byte {exc.start + 1})")
            continue
        if not line:
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"line {number}: not JSON ({exc.msg})")
            continue
        if not isinstance(row, dict):
            errors.append(f"line {number}: not a JSON object")
            continue
        key, title = row.pop("id", None), row.pop("title", None)
        if key is None or (isinstance(key, str) and not key.strip()) or not isinstance(key, (str, int)):
            errors.append(f"line {number}: missing id (a non-empty string or an integer)")
            continue
        if not isinstance(title, str) or not title.strip():
            errors.append(f"line {number}: missing title")
            continue
        key = str(key).strip()
        if key in first_line:
            errors.append(f"line {number}: duplicate id {key!r} (first on line {first_line[key]})")
            continue
        first_line[key] = number
        items.append(CatalogueItem(id=key, title=title.strip(), fields=row))
    if errors:
        more = f"; and {len(errors) - MAX_ERRORS} more bad lines" if len(errors) > MAX_ERRORS else ""
        raise InvalidInput(f"{source}: " + "; ".join(errors[:MAX_ERRORS]) + more + ". Nothing was imported.")
    if not items:
        raise InvalidInput(f"{source} holds no items: one JSON object a line, each with an id and a title")
    return items


class Catalogues:
    """Every catalogue of a home: import, list, show, remove, and retrieval over one."""

    def __init__(self, store: Store, folder: Path) -> None:
        self.store, self.folder = store, folder
        self._indexes: dict[str, CatalogueIndex] = {}

    def close(self) -> None:
        for index in self._indexes.values():
            index.close()
        self._indexes.clear()

    # -- writes --------------------------------------------------------------------------

    def add(self, name: str, items: Sequence[CatalogueItem], source: str | None = None, *, replace: bool = False,
            on_batch: Callable[[int], None] | None = None) -> Catalogue:
        """Import ``items`` as catalogue ``name`` (all or nothing); ``replace`` swaps an existing one."""
        check_name(name)
        old = self.find(name)
        if old is not None and not replace:
            raise InvalidInput(f"there is already a catalogue {name!r}; remove it first, or import with --replace")
        folder = f"{name}-{uuid.uuid4().hex[:8]}"
        index = CatalogueIndex(self.folder / folder)
        try:
            for start in range(0, len(items), BATCH):
                part = items[start : start + BATCH]
                texts = [item_text(i) for i in part]
                vectors = [v for at in range(0, len(texts), EMBED_BATCH) for v in index.embed(texts[at : at + EMBED_BATCH])]
                index.add(range(start, start + len(part)), vectors)
                if on_batch is not None:
                    on_batch(len(part))
            fields = sorted({key for item in items for key in item.fields})
            with self.store.transaction() as db:
                old_folder = self._folder_of(name)
                db.execute("DELETE FROM catalogues WHERE name = ?", (name,))
                db.execute("INSERT INTO catalogues VALUES (?, ?, ?, ?, ?, ?)",
                           (name, folder, source, len(items), json.dumps(fields), now()))
                db.executemany("INSERT INTO catalogue_items VALUES (?, ?, ?, ?, ?)",
                               [(name, item.id, position, item.title, json.dumps(item.fields, ensure_ascii=False))
                                for position, item in enumerate(items)])
        except BaseException:
            index.close()
            shutil.rmtree(self.folder / folder, ignore_errors=True)
            raise
        finally:
            index.close()
        if old_folder:
            self._drop_folder(old_folder)
        return self.get(name)

    def remove(self, name: str) -> Catalogue:
        catalogue = self.get(name)
        folder = self._folder_of(name)
        with self.store.transaction() as db:
            db.execute("DELETE FROM catalogues WHERE name = ?", (name,))
            db.execute("DELETE FROM tastes_read WHERE catalogue = ?", (name,))  # read against its vocabulary
        self._drop_folder(folder)
        return catalogue

    def _drop_folder(self, folder: str) -> None:
        index = self._indexes.pop(folder, None)
        if index is not None:
            index.close()
        shutil.rmtree(self.folder / folder, ignore_errors=True)  # leftovers are harmless: no row names them

    # -- reads ---------------------------------------------------------------------------

    def list(self) -> list[Catalogue]:
        return [_catalogue(row) for row in self.store.query("SELECT * FROM catalogues ORDER BY name")]

    def find(self, name: str) -> Catalogue | None:
        rows = self.store.query("SELECT * FROM catalogues WHERE name = ?", (name,))
        return _catalogue(rows[0]) if rows else None

    def get(self, name: str) -> Catalogue:
        found = self.find(name)
        if found is None:
            names = ", ".join(c.name for c in self.list()) or "none yet: `reverie catalogue import FILE`"
            raise NotFound(f"no catalogue {name!r} (catalogues: {names})")
        return found

    def items(self, name: str, *, limit: int | None = None, offset: int = 0) -> list[CatalogueItem]:
        self.get(name)
        rows = self.store.query("SELECT id, title, fields FROM catalogue_items WHERE catalogue = ? ORDER BY position "
                                "LIMIT ? OFFSET ?", (name, -1 if limit is None else limit, offset))
        return [_item(row) for row in rows]

    def item(self, name: str, item_id: str) -> CatalogueItem:
        rows = self.store.query("SELECT id, title, fields FROM catalogue_items WHERE catalogue = ? AND id = ?",
                                (name, item_id))
        if not rows:
            self.get(name)
            raise NotFound(f"catalogue {name!r} has no item {item_id!r}")
        return _item(rows[0])

    def at(self, name: str, positions: Sequence[int]) -> dict[int, CatalogueItem]:
        """Items by their position (the index's key)."""
        found: dict[int, CatalogueItem] = {}
        for start in range(0, len(positions), 500):  # SQLite's limit on bound parameters
            part = list(positions[start : start + 500])
            marks = ",".join("?" * len(part))
            for row in self.store.query(f"SELECT position, id, title, fields FROM catalogue_items WHERE catalogue = ? "
                                        f"AND position IN ({marks})", (name, *part)):
                found[row["position"]] = _item(row)
        return found

    def positions(self, name: str) -> dict[str, int]:
        """Every item's position by id."""
        return {row["id"]: row["position"] for row in
                self.store.query("SELECT id, position FROM catalogue_items WHERE catalogue = ?", (name,))}

    def index(self, name: str) -> CatalogueIndex:
        folder = self._folder_of(name)
        if folder is None:
            self.get(name)  # raises NotFound
        if folder not in self._indexes:
            self._indexes[folder] = CatalogueIndex(self.folder / folder)
        return self._indexes[folder]

    def _folder_of(self, name: str) -> str | None:
        rows = self.store.query("SELECT folder FROM catalogues WHERE name = ?", (name,))
        return rows[0]["folder"] if rows else None


def check_name(name: str) -> None:
    if not NAME.match(name or ""):
        raise InvalidInput(f"bad catalogue name {name!r}: up to 64 letters, digits, '.', '_' or '-', "
                           "starting with a letter or digit")


def name_from(path: Path) -> str:
    """A catalogue name from a file name: its stem, with other characters made '-'."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", path.stem).strip("-._")[:64]
    if not name:
        raise InvalidInput(f"cannot make a catalogue name from {path.name!r}; pass --name")
    return name


def _catalogue(row) -> Catalogue:
    return Catalogue(name=row["name"], items=row["items"], fields=json.loads(row["fields"]), source=row["source"],
                     created_at=row["created_at"])


def _item(row) -> CatalogueItem:
    try:
        return CatalogueItem(id=row["id"], title=row["title"], fields=json.loads(row["fields"]))
    except json.JSONDecodeError as exc:  # written by us as JSON: only a hand-edited database gets here
        raise StoreError(f"catalogue item {row['id']!r} has unreadable fields: {exc}") from exc
