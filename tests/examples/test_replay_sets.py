"""The replay-sets harness: which general questions an adapter broke, and its --groups reading."""

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from replay_sets import broken, group  # noqa: E402


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
