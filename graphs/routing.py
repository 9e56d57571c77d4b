"""Which of a version's frozen adapters answers a turn: the one holding what the turn is about.

The episodic index already finds the experience a question is about (94% of the time on the
benchmark's 20 facts, README "Recall"). A turn is routed to the adapter that holds the user's
best-matching experience, if that experience is in one and matches well enough; otherwise it is
answered by the plain weights (and recall, when on, brings any short-term memory into the
prompt). This is "parametric RAG" (arXiv 2501.15915) with the retriever reverie already has.
Only the turn's own user's adapters are candidates: no user's knowledge answers another user.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from memory.episodic import Hit
from memory.records import Adapter
from memory.store import Store

LIVE = ("short_term", "consolidated")


@dataclass(frozen=True)
class Route:
    adapter: str | None  # the adapter's name, or None: the plain weights
    experience: int | None = None  # the experience that chose it
    score: float | None = None  # its similarity to the query


def choose(hits: Sequence[Hit], library: Sequence[Adapter], user: str, min_score: float) -> Route:
    """The route given the query's hits (most similar first): the best experience decides."""
    best = next((h for h in hits if h.kind == "experience"), None)
    if best is None or best.score < min_score:
        return Route(None)
    for adapter in library:
        if adapter.user == user and best.id in adapter.experiences:
            return Route(adapter.name, best.id, round(best.score, 4))
    return Route(None, best.id, round(best.score, 4))  # best match is not in the weights: recall's


def policy_of(library: Sequence[Adapter], user: str) -> str | None:
    """The refined policy (CORY) that answers every turn of ``user``, if the version has one."""
    return next((a.name for a in library if a.kind == "policy" and a.user == user), None)


def answering(library: Sequence[Adapter], user: str, knowledge: str | None) -> tuple[str, ...]:
    """The adapters a turn of ``user`` is answered with, merged together: the knowledge adapter
    it was routed to (if any) and the user's refined policy (if any)."""
    return tuple(name for name in (knowledge, policy_of(library, user)) if name)


def route(store: Store, library: Sequence[Adapter], query: str, user: str, min_score: float) -> Route:
    """Search the user's experiences for ``query`` and choose (no search when no adapter is theirs)."""
    if not any(a.user == user for a in library):
        return Route(None)
    return choose(store.search(query, user=user, k=1, statuses=LIVE), library, user, min_score)
