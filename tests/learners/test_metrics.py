import pytest

from learners.metrics import contains, kendall_tau, normalize_answer, qa_f1, spearman


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


def test_kendall_tau_b_and_spearman_match_hand_computations():
    # 5 items against binary labels: 2 concordant, 4 discordant, 4 pairs tied in y only.
    assert kendall_tau([1, 2, 3, 4, 5], [1, 0, 1, 1, 0]) == round(-2 / 60 ** 0.5, 4)
    assert kendall_tau([1, 2, 3], [1, 2, 3]) == 1.0 and kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0
    assert kendall_tau([1, 1, 1], [1, 2, 3]) is None  # a constant judge has no correlation
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    # Average ranks for ties: x ranks [1.5, 1.5, 3], y ranks [1, 2, 3] -> rho = 0.866.
    assert spearman([0, 0, 1], [1, 2, 3]) == 0.866
    assert spearman([1, 1], [1, 2]) is None
