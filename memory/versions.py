"""The model-version registry: immutable version folders, the active version, promote and rollback.

A version is a folder ``HOME/versions/<id>/`` holding weights (a LoRA adapter or a whole model)
and ``manifest.json`` (parent, base model, learner and its settings, what it consumed, its
evaluation figures and gate decision). Nothing in it changes after it is created.

A version made by a night since 0.2 holds a *library*: the manifest's ``adapters`` lists every
frozen LoRA adapter the version serves (``memory.records.Adapter``), those it inherits from its
parent and those it made, whose folders are ``<its folder>/adapters/<k>``. A turn merges at most
one of them, chosen by what it is about (``graphs.routing``). Older versions hold one cumulative
adapter in their folder, merged into the base at load (``library`` is empty for them).

Crash safety, step by step:
  - ``create`` writes into a staging folder, then renames it into place *inside* the SQLite
    transaction that records it. A crash before the rename leaves only staging debris; a crash
    after it but before the commit leaves an unrecorded folder; neither is ever active, and
    ``prune`` removes both.
  - ``promote`` and ``rollback`` switch the active version with one UPDATE in one transaction:
    at any instant the old or the new version is active, and only complete, recorded versions
    can be.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.errors import InvalidInput, NotFound
from memory.db import now
from memory.records import Adapter, ModelVersion, VersionEvent
from memory.store import Store

BASE = "base"
MANIFEST = "manifest.json"


class Versions:
    def __init__(self, store: Store, folder: Path) -> None:
        self.store = store
        self.folder = folder

    # -- reading -------------------------------------------------------------------------

    def get(self, version_id: str) -> ModelVersion:
        rows = self.store.query("SELECT * FROM model_versions WHERE id = ?", (version_id,))
        if not rows:
            raise NotFound(f"no model version {version_id!r}; `reverie models list` shows them")
        return _version(rows[0])

    def root(self, version: ModelVersion) -> ModelVersion:
        """The first version of ``version``'s line: its base model's."""
        while version.parent is not None:
            version = self.get(version.parent)
        return version

    def list(self, base_model: str | None = None) -> list[ModelVersion]:
        where, params = ("WHERE base_model = ?", (base_model,)) if base_model else ("", ())
        rows = self.store.query(f"SELECT * FROM model_versions {where} ORDER BY created_at, id", params)
        return [_version(r) for r in rows]

    def active(self, base_model: str) -> ModelVersion:
        """The version serving ``base_model``: the last promoted one, else the base itself."""
        rows = self.store.query("SELECT version FROM active_versions WHERE base_model = ?", (base_model,))
        return self.get(rows[0]["version"] if rows else _base_id(base_model, self))

    def library(self, version: ModelVersion) -> list[Adapter]:
        """The frozen adapters ``version`` serves (none for a base or a pre-0.2 cumulative version)."""
        holders: dict[str, ModelVersion] = {}
        adapters = []
        for entry in version.manifest.get("adapters", []):
            holder = holders.setdefault(entry["version"], self.get(entry["version"]))
            adapters.append(Adapter(name=entry["name"], version=entry["version"], user=entry["user"],
                                    experiences=entry["experiences"], path=str(Path(holder.path) / entry["folder"]),
                                    kind=entry.get("kind", "knowledge")))
        return adapters

    def weights(self, version: ModelVersion) -> str | None:
        """The folder a version's own weights load from: a pre-0.2 cumulative adapter's, else None
        (the base's weights, with the version's library attached)."""
        return version.path if version.parent is not None and "adapters" not in version.manifest else None

    def history(self, base_model: str) -> list[VersionEvent]:
        rows = self.store.query("SELECT * FROM version_events WHERE base_model = ? ORDER BY id", (base_model,))
        return [VersionEvent(**r) for r in rows]

    # -- writing -------------------------------------------------------------------------

    def ensure_base(self, base_model: str, path: Path) -> ModelVersion:
        """Record the base model as the root version of its line (once)."""
        with self.store.transaction() as db:
            version_id = _base_id(base_model, self)
            if not db.execute("SELECT 1 FROM model_versions WHERE id = ?", (version_id,)).fetchone():
                db.execute(
                    "INSERT INTO model_versions (id, parent, base_model, path, learner, manifest, created_at) "
                    "VALUES (?, NULL, ?, ?, NULL, ?, ?)",
                    (version_id, base_model, str(path), json.dumps({"base_model": base_model}), now()),
                )
        return self.get(version_id)

    def forget_base(self, version_id: str) -> None:
        """Drop a base row that nothing uses yet (its model failed to load when first registered)."""
        with self.store.transaction() as db:
            db.execute(
                "DELETE FROM model_versions WHERE id = ? AND parent IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM model_versions WHERE parent = ?) "
                "AND NOT EXISTS (SELECT 1 FROM version_events WHERE version = ?) "
                "AND NOT EXISTS (SELECT 1 FROM active_versions WHERE version = ?) "
                "AND NOT EXISTS (SELECT 1 FROM learn_runs WHERE parent = ?)",
                (version_id,) * 5,
            )

    def create(
        self, *, parent: str, learner: str, manifest: dict[str, Any], write: Callable[[Path], None]
    ) -> ModelVersion:
        """Make a new version: ``write(folder)`` puts the weights there; nothing is activated.

        Library entries of ``manifest["adapters"]`` whose ``version`` is None are the new version's
        own: they get its id, and the name ``<id>.<k>`` from their folder ``adapters/<k>``."""
        source = self.get(parent)
        self.folder.mkdir(parents=True, exist_ok=True)
        staging = self.folder / f".staging-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            write(staging)
            with self.store.transaction() as db:
                count = db.execute("SELECT COUNT(*) FROM model_versions WHERE parent IS NOT NULL").fetchone()[0]
                version_id = f"v{count + 1}"
                full = {"parent": parent, "base_model": source.base_model, "learner": learner, **manifest}
                if "adapters" in full:
                    full["adapters"] = [_owned(entry, version_id) for entry in full["adapters"]]
                _write_synced(staging / MANIFEST, json.dumps(full, indent=2, sort_keys=True))
                target = self.folder / version_id
                stamp = now()
                db.execute(
                    "INSERT INTO model_versions (id, parent, base_model, path, learner, manifest, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (version_id, parent, source.base_model, str(target), learner, json.dumps(full), stamp),
                )
                if target.exists():  # an unrecorded folder left by a crash after its rename
                    shutil.rmtree(target)
                os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.get(version_id)

    def without(self, version: ModelVersion, experience_id: int) -> ModelVersion | None:
        """A new version serving ``version``'s library minus every adapter that holds the experience
        (None when none does): how forgetting reaches the weights. The dropped adapters' other
        experiences are in no adapter any more, so the next night learns them again, and until then
        recall answers them. Nothing is activated."""
        entries = version.manifest.get("adapters", [])
        dropped = [e for e in entries if experience_id in e["experiences"]]
        if not dropped:
            return None
        relearn = sorted({x for e in dropped for x in e["experiences"]} - {experience_id})
        manifest = {"adapters": [e for e in entries if e not in dropped], "forgot": experience_id,
                    "dropped": [e["name"] for e in dropped], "relearn": relearn}
        return self.create(parent=version.id, learner="forget", manifest=manifest, write=lambda folder: None)

    def promote(self, version_id: str, reason: str | None = None) -> ModelVersion:
        return self._switch(version_id, "promote", reason)

    def rollback(self, base_model: str, to: str | None = None, reason: str | None = None) -> ModelVersion:
        """Go back to ``to``, or by default to the active version's parent."""
        if to is None:
            current = self.active(base_model)
            if current.parent is None:
                raise InvalidInput(f"{current.id} is the base of {base_model}; there is nothing to roll back to")
            to = current.parent
        return self._switch(to, "rollback", reason)

    def _switch(self, version_id: str, action: str, reason: str | None) -> ModelVersion:
        version = self.get(version_id)
        if version.pruned_at:
            raise InvalidInput(f"{version_id} was pruned on {version.pruned_at[:10]}; its weights are gone")
        if version.parent is not None and not Path(version.path).is_dir():  # a base may be a hub id
            raise InvalidInput(f"{version_id}'s folder {version.path} is missing")
        stamp = now()
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO active_versions VALUES (?, ?, ?) "
                "ON CONFLICT (base_model) DO UPDATE SET version = excluded.version, switched_at = excluded.switched_at",
                (version.base_model, version_id, stamp),
            )
            db.execute(
                "INSERT INTO version_events (base_model, version, action, reason, created_at) VALUES (?, ?, ?, ?, ?)",
                (version.base_model, version_id, action, reason, stamp),
            )
        return version

    def prune(self, base_model: str, keep: int) -> list[str]:
        """Delete the folders of all but the ``keep`` newest versions of a line; never the base, the
        active version or its parent. Rows stay (marked pruned) for the history. Also clears debris."""
        active = self.active(base_model)
        protected = {active.id, active.parent, _base_id(base_model, self)}
        candidates = [v for v in self.list(base_model) if v.parent is not None and not v.pruned_at]
        kept = protected | ({v.id for v in candidates[-keep:]} if keep > 0 else set())
        # A kept version's library may live in older folders: those stay while it does.
        kept |= {entry["version"] for v in candidates if v.id in kept for entry in v.manifest.get("adapters", [])}
        removed = []
        for version in candidates:
            if version.id in kept:
                continue
            with self.store.transaction() as db:
                db.execute("UPDATE model_versions SET pruned_at = ? WHERE id = ?", (now(), version.id))
                shutil.rmtree(version.path, ignore_errors=True)
            removed.append(version.id)
        self.clear_debris()
        return removed

    def clear_debris(self) -> None:
        """Remove staging folders and unrecorded version folders (left by a process that died while
        writing one). Only while nothing writes a version: under the learn lock."""
        if not self.folder.is_dir():
            return
        recorded = {Path(v.path).name for v in self.list()}
        for entry in self.folder.iterdir():
            if entry.is_dir() and (entry.name.startswith(".staging-") or entry.name not in recorded):
                shutil.rmtree(entry, ignore_errors=True)

    # -- comparing -----------------------------------------------------------------------

    def diff(self, a: str, b: str) -> dict[str, Any]:
        """What differs between two versions' manifests, key by key (nested keys joined by dots)."""
        left, right = _flatten(self.get(a).manifest), _flatten(self.get(b).manifest)
        changed = {
            key: {"a": left.get(key), "b": right.get(key)}
            for key in sorted(set(left) | set(right))
            if left.get(key) != right.get(key)
        }
        return {"a": a, "b": b, "changed": changed}


def _base_id(base_model: str, versions: Versions) -> str:
    """Each base model line has its own root; the first registered is simply "base"."""
    rows = versions.store.query(
        "SELECT id FROM model_versions WHERE parent IS NULL AND base_model = ?", (base_model,)
    )
    if rows:
        return rows[0]["id"]
    others = versions.store.query("SELECT COUNT(*) AS n FROM model_versions WHERE parent IS NULL")[0]["n"]
    return BASE if others == 0 else f"{BASE}-{others + 1}"


def _owned(entry: dict, version_id: str) -> dict:
    if entry.get("version") is not None:
        return entry
    return {**entry, "version": version_id, "name": f"{version_id}.{Path(entry['folder']).name}"}


def _version(row) -> ModelVersion:
    return ModelVersion(**{**row, "manifest": json.loads(row["manifest"] or "{}")})


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
