"""SAC and the voting cleaners on synthetic votes: the exact decision for every bin."""

import pytest

from learners.sac import Bins, Votes, decide, sac, vote


def votes(agreeing, against, abstain=0, both_bad=()):
    return Votes([True] * agreeing + [False] * against + [None] * abstain, both_bad)


@pytest.mark.parametrize("agreeing, against, action, bin_, category", [
    (0, 4, "flip", "strong disagreement", "mislabel"),
    (1, 3, "flip", "strong disagreement", "mislabel"),  # 0.25 is still strong disagreement
    (1, 2, "keep", "disagreement", "subjective or differing criteria"),
    (2, 2, "keep", "agreement", "subjective or differing criteria"),
    (2, 1, "keep", "agreement", "subjective or differing criteria"),
    (3, 1, "keep", "strong agreement", "reliable"),
    (4, 0, "keep", "strong agreement", "reliable"),
])
def test_sac_by_agreement_bin(agreeing, against, action, bin_, category):
    decision = sac(votes(agreeing, against, abstain=2))  # abstentions count for nothing
    assert (decision.action, decision.bin, decision.category) == (action, bin_, category)
    assert f"{agreeing} of {agreeing + against} members agree" in decision.reason


def test_sac_removes_pairs_most_members_find_both_bad_in_any_bin():
    for agreeing, against in ((4, 0), (2, 2), (0, 4)):
        decision = sac(votes(agreeing, against, both_bad=[True, True, False, None]))
        assert (decision.action, decision.category) == ("remove", "both bad")
    assert sac(votes(0, 4, both_bad=[True, False, None, None])).action == "flip"  # half is not most
    assert sac(votes(0, 0, abstain=3)).category == "unjudged" and sac(Votes([])).action == "keep"


@pytest.mark.parametrize("method, agreeing, against, action", [
    ("vote_all_r", 0, 3, "remove"), ("vote_all_r", 1, 2, "keep"),
    ("vote_all_f", 0, 3, "flip"), ("vote_all_f", 1, 2, "keep"),
    ("vote_maj_r", 1, 2, "remove"), ("vote_maj_r", 2, 2, "keep"), ("vote_maj_r", 2, 1, "keep"),
    ("vote_maj_f", 1, 2, "flip"), ("vote_maj_f", 2, 2, "keep"), ("vote_maj_f", 0, 1, "flip"),
])
def test_voting_cleaners(method, agreeing, against, action):
    assert vote(method, votes(agreeing, against, abstain=1)).action == action
    assert decide(method, votes(agreeing, against)).action == action


def test_bins_are_parameters_and_unknown_methods_refused():
    assert sac(votes(1, 2), Bins(strong_disagreement=0.4)).action == "flip"
    with pytest.raises(ValueError):
        vote("vote_some", votes(1, 1))
