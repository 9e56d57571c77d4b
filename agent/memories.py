"""What a user taught: experiences remembered (the log and episodic memory), the probes that will
test whether a night put them into the weights, and the export of everything held about a user."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from agent.errors import InvalidInput
from agent.inputs import experience, required
from agent.inputs import probes as checked_probes
from memory.records import Experience, Feedback, Thread, Turn

if TYPE_CHECKING:
    from agent.facade import Agent


class Export(BaseModel):
    """Everything reverie holds about a user (or everyone), as `memory export` writes it."""

    format: int = 1
    exported_at: str
    experiences: list[Experience]
    threads: list[Thread]
    turns: list[Turn]
    feedback: list[Feedback]


def teach(agent: Agent, texts: list[str], user: str, probes: list[list[dict]] | None) -> list[int]:
    """Remember every text for ``user``, with its given probes: all of them, or (on any error) none."""
    cleaned = [experience(t) for t in texts]
    if not cleaned:
        raise InvalidInput("nothing to teach")
    user = required(user, "user")
    rows = [checked_probes(p) for p in probes] if probes is not None else [[] for _ in cleaned]
    if len(rows) != len(cleaned):
        raise InvalidInput("give one list of probes per experience")
    return agent.on_model_thread(_write, agent, cleaned, user, rows)


def _write(agent: Agent, texts: list[str], user: str, probes: list[list]) -> list[int]:
    with agent.store.transaction():
        added = agent.store.add_experiences(texts, "taught", user)
        for experience, rows in zip(added, probes):
            if rows:
                agent.retention.add_probes(experience.id, rows, origin="given")
    return [e.id for e in added]


def export(agent: Agent, user: str | None) -> Export:
    from memory.db import now

    return Export(
        exported_at=now(),
        experiences=agent.store.list_experiences(user=user),
        threads=agent.store.list_threads(user=user),
        turns=agent.store.list_turns(user=user),
        feedback=agent.store.list_feedback(user=user),
    )
