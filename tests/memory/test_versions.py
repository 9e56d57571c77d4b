import os

import pytest

from agent.errors import InvalidInput, NotFound
from memory import Store
from memory.versions import Versions

BASE_MODEL = "embedded:smollm2-135m-instruct"


@pytest.fixture
def versions(home):
    store = Store.open(home)
    registry = Versions(store, home / "versions")
    registry.ensure_base(BASE_MODEL, home / "models" / "smollm2")
    yield registry
    store.close()


def weights(text):
    def write(folder):
        (folder / "adapter_model.safetensors").write_text(text)

    return write


def new(versions, parent="base", text="w", **manifest):
    return versions.create(parent=parent, learner="selfparam", manifest=manifest, write=weights(text))


def test_versions_are_immutable_folders_with_a_manifest(versions, home):
    assert versions.active(BASE_MODEL).id == "base"
    v1 = new(versions, settings={"lr": 0.001}, consumed={"experiences": [1, 2]})
    assert (v1.id, v1.parent, v1.base_model, v1.learner) == ("v1", "base", BASE_MODEL, "selfparam")
    assert (home / "versions" / "v1" / "adapter_model.safetensors").read_text() == "w"
    assert v1.manifest["consumed"] == {"experiences": [1, 2]} and v1.manifest["parent"] == "base"
    assert versions.active(BASE_MODEL).id == "base"  # creating activates nothing
    v2 = new(versions, parent="v1", settings={"lr": 0.0005})
    assert [v.id for v in versions.list(BASE_MODEL)] == ["base", "v1", "v2"]
    assert v2.parent == "v1"
    assert versions.diff("v1", "v2")["changed"]["settings.lr"] == {"a": 0.001, "b": 0.0005}


def test_promote_and_rollback(versions):
    new(versions)
    new(versions, parent="v1")
    versions.promote("v1", reason="gate passed")
    versions.promote("v2")
    assert versions.active(BASE_MODEL).id == "v2"
    assert versions.rollback(BASE_MODEL).id == "v1"  # to the parent by default
    assert versions.rollback(BASE_MODEL, to="v2").id == "v2"
    versions.rollback(BASE_MODEL, to="base")
    with pytest.raises(InvalidInput, match="nothing to roll back to"):
        versions.rollback(BASE_MODEL)
    assert [(e.version, e.action) for e in versions.history(BASE_MODEL)] == [
        ("v1", "promote"), ("v2", "promote"), ("v1", "rollback"), ("v2", "rollback"), ("base", "rollback")]
    with pytest.raises(NotFound):
        versions.promote("v9")


def test_a_crash_while_creating_leaves_nothing_half_made(versions, home, monkeypatch):
    def crash(*args, **kwargs):
        raise OSError("power cut")

    def broken_write(folder):
        (folder / "half.bin").write_text("x")
        raise OSError("disk full")

    with pytest.raises(OSError):
        versions.create(parent="base", learner="selfparam", manifest={}, write=broken_write)
    monkeypatch.setattr(os, "replace", crash)  # between writing the folder and recording it
    with pytest.raises(OSError):
        new(versions)
    monkeypatch.undo()
    assert [v.id for v in versions.list()] == ["base"]
    assert versions.active(BASE_MODEL).id == "base"
    assert not any((home / "versions").iterdir())  # no staging debris either
    assert new(versions).id == "v1"  # and the next one is numbered as if nothing happened


def test_a_crash_while_promoting_keeps_the_old_version_active(versions, monkeypatch):
    new(versions)
    versions.promote("v1")
    new(versions, parent="v1")
    class Dying:  # the connection dies after the UPDATE, before the event row and the commit
        def __init__(self, conn):
            self.conn = conn

        def execute(self, sql, *args):
            if sql.startswith("INSERT INTO version_events"):
                raise OSError("killed mid-switch")
            return self.conn.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self.conn, name)

    monkeypatch.setattr(versions.store, "db", Dying(versions.store.db))
    with pytest.raises(OSError):
        versions.promote("v2")
    monkeypatch.undo()
    assert versions.active(BASE_MODEL).id == "v1"
    assert [e.version for e in versions.history(BASE_MODEL)] == ["v1"]


def test_prune_keeps_the_newest_the_active_and_its_parent(versions, home):
    for parent in ("base", "v1", "v2", "v3", "v4"):
        new(versions, parent=parent)
    versions.promote("v3")
    (home / "versions" / "stray").mkdir()  # a folder left by a crash after its rename
    removed = versions.prune(BASE_MODEL, keep=1)
    assert removed == ["v1", "v4"]  # kept: v5 (newest), v3 (active), v2 (its parent)
    assert sorted(p.name for p in (home / "versions").iterdir()) == ["v2", "v3", "v5"]  # the stray went too
    assert versions.get("v1").pruned_at is not None and versions.get("v2").pruned_at is None
    with pytest.raises(InvalidInput, match="pruned"):
        versions.promote("v1")
