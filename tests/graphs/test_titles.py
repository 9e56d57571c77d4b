"""Titles found in running text and matched from a model's list."""

from __future__ import annotations

from graphs.titles import Titles, normalise

TITLES = Titles([("1", "Water"), ("2", "A Nightmare on Elm Street"), ("3", "Up"), ("4", "Fast & Furious"),
                 ("5", "The Lanternmaker"), ("6", "Water")])


def test_normalise():
    assert normalise("A Nightmare on Elm Street (1984 film)") == "a nightmare on elm street"
    assert normalise("Fast & Furious!") == "fast and furious"


def test_titles_count_where_written_as_titles():
    assert TITLES.find("I really enjoyed A Nightmare on Elm Street (1984) and Water (1985)") == ["2", "1", "6"]
    assert TITLES.find("a glass of water, then up the stairs, a nightmare on elm street") == []
    assert TITLES.find('Have you seen "Up"? Or Fast & Furious?') == ["3", "4"]


def test_a_model_list_is_matched_line_by_line():
    assert TITLES.match_line("1. The Lanternmaker (2003) - a girl and lanterns") == ["5"]
    assert TITLES.match_line("2. The Lantern Maker") == ["5"]  # close enough
    assert TITLES.match_line("3. Something Else Entirely") == []
    assert TITLES.match_line("") == []
