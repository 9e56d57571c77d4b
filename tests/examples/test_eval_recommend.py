"""The ReDial harness's keywords: what was said around an item's recommendations, its own words."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from eval_recommend import keywords  # noqa: E402


def row(seeker: str, reply: str, rec: list[int], seen: list[int] = ()) -> dict:
    return {"turns": [{"role": "user", "content": seeker}], "response": reply, "rec": rec, "seen": list(seen)}


def test_an_items_keywords_are_the_distinctive_words_said_around_it_without_titles():
    titles = {1: "Happy Death Day", 2: "A Quiet Place", 3: "Elf", 4: "Nightmare on Elm Street"}
    # "tonight" is said around every item of twenty, so it tells none of them apart.
    train = [row("I want scary slasher tonight, I loved Nightmare on Elm Street (1984)",
                 "You like scary movies? Happy Death Day (2017) is great", [1], [4]),
             row("something scary and silent tonight please", "A Quiet Place (2018) is tense", [2]),
             row("a cosy christmas comedy tonight", "Elf (2003) is funny", [3])]
    train += [row("anything tonight", "try this", [10 + i]) for i in range(20)]
    words = keywords(train, titles)
    assert "scary" in words[1] and "slasher" in words[1]
    assert not {"happy", "death", "day", "nightmare", "elm", "street"} & set(words[1])  # the named titles' words
    assert not {"movies", "great"} & set(words[1])  # words that say nothing about an item
    assert "tonight" not in words[1] and "tonight" not in words[3]
    assert {"christmas", "comedy", "funny"} <= set(words[3])
    assert 4 not in words  # mentioned, never recommended: nothing was said around a recommendation of it
