"""Reading what a conversation asks for: adversarial phrasings, the fixture's ten conversations
read exactly as their machine-readable constraints, and only what the catalogue can be asked about."""

from __future__ import annotations

import json

import pytest

from graphs.wants import Vocabulary, Wants, read, violations
from memory.catalogue import read_items
from memory.records import CatalogueItem


@pytest.fixture(scope="module")
def films(shared_data):
    return read_items((shared_data / "recsys" / "catalogue.jsonl").read_bytes())


@pytest.fixture(scope="module")
def vocab(films):
    return Vocabulary.of(films)


def said(vocab, *texts) -> dict:
    return read([{"role": "user", "content": t} for t in texts], vocab).model_dump(exclude_defaults=True)


@pytest.mark.parametrize("text, expected", [
    ("nothing before 1990", {"year_min": 1990}),
    ("Something made before 1985.", {"year_max": 1984}),
    ("after 2010", {"year_min": 2011}),
    ("from 2000 onwards", {"year_min": 2000}),
    ("something from the 80s", {"year_min": 1980, "year_max": 1989}),
    ("between 1990 and 2000", {"year_min": 1990, "year_max": 2000}),
    ("released in 1994 or earlier", {"year_max": 1994}),
    ("under two hours", {"runtime_lt": 120}),
    ("no more than 90 minutes", {"runtime_lt": 91}),
    ("I only have about an hour and a half", {"runtime_lt": 91}),
    ("nothing over 2 hours", {"runtime_lt": 121}),
    ("at least 100 minutes", {"runtime_gt": 99}),
    ("not R", {"rating_not": ["R"]}),
    ("no R-rated films please", {"rating_not": ["R"]}),
    ("it needs to be rated G", {"rating_in": ["G"]}),
    ("PG-13 or lower", {"rating_in": ["G", "PG", "PG-13"]}),
    ("anything but comedy", {"genres_none": ["comedy"]}),
    ("A romance, but please no science fiction.", {"genres_all": ["romance"], "genres_none": ["sci-fi"]}),
    ("no horror or thriller", {"genres_none": ["thriller", "horror"]}),
    ("a film that is not in English", {"language_not": ["English"]}),
    ("Korean films", {"language_in": ["Korean"]}),
    ("an animated film about robots", {"genres_all": ["animation"], "tags_any": ["robots"]}),
    ("My kids are obsessed with robots", {"tags_any": ["robots"]}),  # kids: the audience, not the topic
    ("a family movie night", {"genres_all": ["family"]}),  # "night" is when, not what
    ("Grab a glass of water and watch something", {}),
    ("a thriller or a mystery", {"genres_any": ["thriller", "mystery"]}),
    ("rated PG or G", {"rating_in": ["PG", "G"]}),
    ("I do not mind subtitles", {}),
])
def test_adversarial_phrasings(vocab, text, expected):
    assert said(vocab, text) == expected


def test_later_statements_combine_with_earlier_ones(vocab):
    assert said(vocab, "I only have about an hour and a half tonight.", "shorter than 85 minutes") == {"runtime_lt": 85}
    assert said(vocab, "no horror", "actually, I would like horror") == {"genres_all": ["horror"]}
    assert said(vocab, "after 1990", "after 2000") == {"year_min": 2001}


def test_titles_mentioned_are_seen_and_liked_ones_are_kept(vocab):
    wants = read([{"role": "user", "content": "I loved The Glass Orchard but not Paprika Street"},
                  {"role": "assistant", "content": "Have you seen Hollow Pines?"}], vocab)
    assert wants.seen == ["m01", "m03", "m06"] and wants.liked == ["m01"]


def test_the_fixture_conversations_read_as_their_constraints(vocab, films, shared_data):
    titles = {f.title: f.id for f in films}
    for line in (shared_data / "recsys" / "conversations_dev.jsonl").read_text().splitlines():
        case = json.loads(line)
        wants = read(case["turns"], vocab)
        expected = dict(case["constraints"])
        seen = [titles[t] for t in expected.pop("exclude_titles", [])]
        got = wants.constraints()
        for key, value in expected.items():
            assert got[key] == value if not isinstance(value, list) else set(value) <= set(got[key]), case["id"]
        assert set(seen) <= set(wants.seen), case["id"]


def test_only_what_the_catalogue_can_be_asked_about_is_read():
    titles_only = Vocabulary.of([CatalogueItem(id="1", title="Jaws"), CatalogueItem(id="2", title="Alien")])
    wants = read([{"role": "user", "content": "A horror film after 1990, not R, like Jaws (1975)"}], titles_only)
    assert wants.constraints() == {} and wants.seen == ["1"] and wants.liked == ["1"]


def test_an_unknown_value_cannot_satisfy_a_limit():
    bare = CatalogueItem(id="1", title="Untold", fields={"genres": ["horror"]})
    assert violations(bare, Wants(year_min=1990)) == ["year None < 1990"]
    assert violations(bare, Wants(genres_all=["horror"], seen=["2"])) == []
    assert violations(bare, Wants(seen=["1"])) == ["already mentioned"]
