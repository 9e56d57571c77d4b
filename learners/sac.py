"""Source-Aware Cleaning (SAC, arXiv 2410.01957 v1) of feedback, and the voting cleaners it is
compared with. Pure functions of the committee's votes; the committee itself is
``graphs.committee`` and the store of decisions ``memory.cleaning``.

The recipe, in the paper's order:

1. A committee of K judges votes on each item: does it agree with the human label? For a
   preference, a member agrees when its score of the chosen answer beats its score of the
   rejected one (signs only, never scores across members: their scales differ; a tie is no
   agreement, as the paper's ``>``). For a thumb on one answer, a member agrees when its own
   good/bad judgement of the answer matches the thumb.
2. The agreement v/K puts the item in a bin: strong disagreement (v/K <= 0.25), disagreement
   (< 0.5), agreement (< 0.75), strong agreement.
3. The bin and the members' absolute judgements map to the paper's sources of unreliability:
   - both answers judged bad (harmful, incorrect or irrelevant) by most members that can judge
     answers on their own -> **remove** (the pair teaches nothing right);
   - strong disagreement with the human -> **flip** (mislabelled);
   - middling agreement, typical of subjective questions, differing criteria or thresholds ->
     **keep** as labelled (the paper keeps these sources);
   - strong agreement -> keep (reliable).

Departures: the paper's bin edges were not retrievable; ours are quarters of v/K and are
parameters. Its committee was 8 large reward models; ours is configurable (the agent's own
model under several criteria, CodeJudge, reward models, callables), and members that cannot
judge an item abstain rather than vote.

Voting cleaners (PrefCleanBench, the same lab): with ``agreeing`` of ``n`` voting members,
vote_all_r removes and vote_all_f flips when no member agrees; vote_maj_r removes and
vote_maj_f flips when fewer than half agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Action = Literal["keep", "flip", "remove"]
METHODS = ("sac", "vote_all_r", "vote_all_f", "vote_maj_r", "vote_maj_f")


@dataclass(frozen=True)
class Votes:
    """The committee on one item. ``agree[k]``: member k agrees with the human label (None:
    abstained). ``both_bad[k]``: member k judges both answers bad (None: cannot judge answers
    on their own, or the item has a single answer)."""

    agree: Sequence[bool | None]
    both_bad: Sequence[bool | None] = ()

    @property
    def voting(self) -> int:
        return sum(v is not None for v in self.agree)

    @property
    def agreeing(self) -> int:
        return sum(v is True for v in self.agree)


@dataclass(frozen=True)
class Decision:
    action: Action
    bin: str | None  # None when no member voted
    category: str  # the likely source of unreliability
    reason: str


@dataclass(frozen=True)
class Bins:
    strong_disagreement: float = 0.25  # v/K at or below: flip
    agreement: float = 0.5  # v/K at or above: agreement
    strong_agreement: float = 0.75  # v/K at or above: strong agreement

    def of(self, share: float) -> str:
        if share <= self.strong_disagreement:
            return "strong disagreement"
        if share < self.agreement:
            return "disagreement"
        if share < self.strong_agreement:
            return "agreement"
        return "strong agreement"


UNJUDGED = Decision("keep", None, "unjudged", "no committee member could judge it; kept as given")


def sac(votes: Votes, bins: Bins = Bins()) -> Decision:
    """Source-Aware Cleaning of one item."""
    judges_bad = [b for b in votes.both_bad if b is not None]
    if judges_bad and sum(judges_bad) * 2 > len(judges_bad):
        return Decision("remove", _bin(votes, bins), "both bad",
                        f"{sum(judges_bad)} of {len(judges_bad)} members judge both answers bad")
    if not votes.voting:
        return UNJUDGED
    share, where = votes.agreeing / votes.voting, _bin(votes, bins)
    tally = f"{votes.agreeing} of {votes.voting} members agree with the label"
    if where == "strong disagreement":
        return Decision("flip", where, "mislabel", f"{tally}: the committee strongly prefers the other answer")
    if where == "strong agreement":
        return Decision("keep", where, "reliable", tally)
    return Decision("keep", where, "subjective or differing criteria",
                    f"{tally} ({share:.0%}): middling agreement, typical of taste, criteria or thresholds")


def vote(method: str, votes: Votes, bins: Bins = Bins()) -> Decision:
    """The voting cleaners; ``method`` is one of vote_all_r, vote_all_f, vote_maj_r, vote_maj_f."""
    if method not in METHODS[1:]:
        raise ValueError(f"unknown voting method {method!r}")
    if not votes.voting:
        return UNJUDGED
    n, agreeing = votes.voting, votes.agreeing
    fails = agreeing == 0 if "_all_" in method else agreeing * 2 < n
    tally = f"{agreeing} of {n} members agree with the label"
    if not fails:
        return Decision("keep", _bin(votes, bins), "reliable", tally)
    rule = "no member agrees" if "_all_" in method else "fewer than half agree"
    action: Action = "remove" if method.endswith("_r") else "flip"
    return Decision(action, _bin(votes, bins), "committee disagrees", f"{tally}: {rule}")


def decide(method: str, votes: Votes, bins: Bins = Bins()) -> Decision:
    if method == "sac":
        return sac(votes, bins)
    return vote(method, votes, bins)


def _bin(votes: Votes, bins: Bins) -> str | None:
    return bins.of(votes.agreeing / votes.voting) if votes.voting else None
