import pytest

from learners.metrics import contains, normalize_answer, qa_f1


def test_normalisation_follows_squad():
    assert normalize_answer("The  Port-Halvik ferry!") == "porthalvik ferry"
    assert normalize_answer("An apple, a pear") == "apple pear"


def test_contains_matches_whole_words_only():
    assert contains("Teodor works in Port Halvik, a coastal town.", ["Port Halvik"])
    assert contains("It is on 11 October.", ["October 11", "11 October"])
    assert not contains("Teodor works in Port Halvikstad.", ["Port Halvik"])
    assert not contains("anything", [""])


@pytest.mark.parametrize(
    "prediction, golds, expected",
    [
        ("Port Halvik", ["Port Halvik"], 1.0),
        ("in Port Halvik", ["Port Halvik"], 0.8),  # precision 2/3, recall 1
        ("Lisbon", ["Port Halvik"], 0.0),
        ("the ferry mechanic", ["mechanic on a ferry", "ferry mechanic"], 1.0),
        ("", ["x"], 0.0),
    ],
)
def test_qa_f1(prediction, golds, expected):
    assert qa_f1(prediction, golds) == pytest.approx(expected)
