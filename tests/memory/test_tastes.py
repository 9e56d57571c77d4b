"""Tastes read from a user's adapters, kept in a real SQLite log: one user's view, cleared on
forget, dropped with their catalogue."""

from __future__ import annotations

import pytest

from graphs.taste import key
from memory.catalogue import Catalogues, read_items
from memory.store import Store
from memory.tastes import TastesRead


@pytest.fixture
def store(home):
    store = Store.open(home)
    yield store
    store.close()


def test_each_user_reads_and_writes_only_their_own_rows(store):
    ana, bob = TastesRead(store, "ana"), TastesRead(store, "bob")
    at = key("m", [("v1.1",)], None, "films", "2026-12-02")
    ana[at] = [{"field": "tags", "value": "dogs", "z": 4.1}]
    assert ana[at] == [{"field": "tags", "value": "dogs", "z": 4.1}] and at in ana and list(ana) == [at]
    assert at not in bob and len(bob) == 0
    with pytest.raises(KeyError):
        bob[at]
    bob[at] = []  # the same key written by another user neither overwrites nor reveals ana's
    assert ana[at] == [{"field": "tags", "value": "dogs", "z": 4.1}] and bob[at] == []
    ana[at] = [{"field": "genres", "value": "western", "z": 3.2}]  # read again: replaced
    assert ana[at][0]["value"] == "western"
    ana.clear()
    assert len(ana) == 0 and bob[at] == []


def test_removing_a_catalogue_drops_what_was_read_against_it(store, home):
    catalogues = Catalogues(store, home / "catalogues")
    catalogues.add("films", read_items(b'{"id": "f1", "title": "Harbour Lights", "tags": ["sea"]}'))
    ana = TastesRead(store, "ana")
    ana[key("m", ["v1.1"], None, "films", catalogues.get("films").created_at)] = [{"field": "tags", "value": "sea",
                                                                                  "z": 3.0}]
    ana[key("m", ["v1.1"], None, "books", "x")] = []
    catalogues.remove("films")
    assert [k for k in ana] == [key("m", ["v1.1"], None, "books", "x")]
