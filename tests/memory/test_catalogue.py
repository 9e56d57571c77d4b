"""Catalogues on a real SQLite log and a real Chroma index: imports all or nothing, bad lines by
number, several catalogues per home, replace and remove."""

from __future__ import annotations

import json

import pytest

from agent.errors import InvalidInput, NotFound
from memory.catalogue import Catalogues, item_text, name_from, read_items
from memory.records import CatalogueItem
from memory.store import Store


@pytest.fixture
def catalogues(home):
    store = Store.open(home)
    yield Catalogues(store, home / "catalogues")
    store.close()


def lines(*rows) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode()


FILMS = [{"id": "f1", "title": "Harbour Lights", "genres": ["drama"], "description": "A lighthouse keeper's last winter."},
         {"id": "f2", "title": "Rocket Garden", "genres": ["sci-fi"], "description": "Kids build a rocket in a greenhouse."},
         {"id": 3, "title": "The Quiet Heist", "tags": ["heist"], "description": "Thieves who never speak."}]


def test_bad_lines_are_named_by_number_and_nothing_is_imported(catalogues):
    data = lines(FILMS[0], {"title": "no id"}, "not json", FILMS[1], {"id": "f1", "title": "again"}, {"id": "x"}, "[1]")
    data += b"\n" + '{"id": "f9", "title": "caf\u00e9"}'.encode("latin-1")
    with pytest.raises(InvalidInput) as bad:
        read_items(data, "films.jsonl")
    said = str(bad.value)
    for expected in ("films.jsonl: line 2: missing id", "line 3: not JSON", "line 5: duplicate id 'f1' (first on line 1)",
                     "line 6: missing title", "line 7: not a JSON object", "line 8: not UTF-8", "Nothing was imported"):
        assert expected in said
    assert catalogues.list() == []
    with pytest.raises(InvalidInput, match="holds no items"):
        read_items(b"\n  \n", "empty.jsonl")


def test_an_import_keeps_every_field_and_the_index_finds_items_by_meaning(catalogues):
    imported = catalogues.add("films", read_items(lines(*FILMS)), "films.jsonl")
    assert (imported.name, imported.items, imported.fields) == ("films", 3, ["description", "genres", "tags"])
    assert catalogues.item("films", "3") == CatalogueItem(id="3", title="The Quiet Heist",
                                                           fields={"tags": ["heist"], "description": "Thieves who never speak."})
    assert [i.id for i in catalogues.items("films", limit=2)] == ["f1", "f2"]
    index = catalogues.index("films")
    nearest = index.nearest(index.embed(["children making a spaceship"]), 3)[0]
    assert catalogues.at("films", [nearest[0][0]])[nearest[0][0]].id == "f2"
    assert item_text(catalogues.item("films", "f2")) == "Rocket Garden. sci-fi. Kids build a rocket in a greenhouse."


def test_several_catalogues_replace_and_remove(catalogues, home):
    catalogues.add("films", read_items(lines(*FILMS)))
    catalogues.add("books", read_items(lines({"id": "b1", "title": "A Book"})))
    assert [c.name for c in catalogues.list()] == ["books", "films"]
    with pytest.raises(InvalidInput, match="already a catalogue 'films'"):
        catalogues.add("films", read_items(lines(FILMS[0])))
    old_folders = set((home / "catalogues").iterdir())
    catalogues.add("films", read_items(lines(FILMS[0])), replace=True)
    assert catalogues.get("films").items == 1 and [i.id for i in catalogues.items("films")] == ["f1"]
    assert len(set((home / "catalogues").iterdir()) - old_folders) == 1 and len(list((home / "catalogues").iterdir())) == 2
    index = catalogues.index("films")
    assert index.count() == 1
    catalogues.remove("films")
    with pytest.raises(NotFound, match="no catalogue 'films' \\(catalogues: books\\)"):
        catalogues.items("films")
    with pytest.raises(NotFound, match="has no item"):
        catalogues.item("books", "zz")
    assert [p.name.split("-")[0] for p in (home / "catalogues").iterdir()] == ["books"]


def test_a_failed_import_leaves_the_catalogue_it_would_replace(catalogues, home):
    catalogues.add("films", read_items(lines(*FILMS)))

    def fail(_):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        catalogues.add("films", read_items(lines(FILMS[0])), replace=True, on_batch=fail)
    assert catalogues.get("films").items == 3 and len(list((home / "catalogues").iterdir())) == 1
    assert catalogues.index("films").count() == 3


def test_names(catalogues, tmp_path):
    with pytest.raises(InvalidInput, match="bad catalogue name"):
        catalogues.add("../etc", read_items(lines(FILMS[0])))
    assert name_from(tmp_path / "my films (2024).jsonl") == "my-films--2024"
    with pytest.raises(InvalidInput, match="pass --name"):
        name_from(tmp_path / "***.jsonl")
