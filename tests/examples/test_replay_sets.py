"""The replay-sets harness: which general questions an adapter broke, and its --groups reading."""

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from replay_sets import broken, group, home_pairs  # noqa: E402

from memory.retention import Retention  # noqa: E402
from memory.store import Store  # noqa: E402


def test_broken_lists_only_what_the_base_answered_right():
    base = {"general_missed": {"Which ocean lies between Europe and North America?": "The Pacific."}}
    adapter = {"general_missed": {"Which ocean lies between Europe and North America?": "The Indian.",
                                  "Who painted the Mona Lisa?": "Benedikt Ruhl."}}
    assert broken(adapter, base) == {"Who painted the Mona Lisa?": "Benedikt Ruhl."}


def test_groups_are_fact_numbers_from_one():
    assert group("3,4") == [2, 3]
    for bad in ("0,1", "a,b", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            group(bad)


def test_a_home_s_stored_pairs_are_read_back_by_fact_text(tmp_path):
    store = Store.open(tmp_path)
    dog, _ = store.add_experiences(["Teodor's dog is Pimento.", "Ines's cat is Biscuit."], "taught", "default")
    Retention(store).add_pairs(dog.id, [("What is Teodor's dog called?", "Pimento.", False)])
    store.close()
    facts = [{"context": "Ines's cat is Biscuit."}, {"context": "Teodor's dog is Pimento."}, {"context": "Never taught."}]
    assert home_pairs(tmp_path, facts, {1}) == [[], [("What is Teodor's dog called?", "Pimento.")], []]
    for needed in ({0}, {2}):  # no pairs written, or never taught: named, before anything trains
        with pytest.raises(SystemExit, match=f"facts \\[{min(needed) + 1}\\]"):
            home_pairs(tmp_path, facts, needed)
    with pytest.raises(SystemExit, match="no reverie home"):
        home_pairs(tmp_path / "nowhere", facts, {1})
