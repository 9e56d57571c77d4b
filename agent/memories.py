"""What a user taught: experiences remembered (the log and episodic memory), the probes that will
test whether a night put them into the weights, and the export of everything held about a user."""

from __future__ import annotations

from typing import TYPE_CHECKING

from filelock import Timeout
from pydantic import BaseModel

from agent.errors import InvalidInput, StoreError
from agent.inputs import experience, required
from agent.inputs import probes as checked_probes
from memory.records import Experience, Feedback, Thread, Turn
from memory.tastes import TastesRead

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


class Forgotten(BaseModel):
    """What `memory forget` did, as it returns it and `memory forget --json` prints it."""

    experience: Experience  # now "forgotten": never recalled or learned from again
    version: str | None = None  # the version made without it, now served (None: no adapter held it)
    dropped: list[str] = []  # the adapters that held it, no longer served
    relearn: list[int] = []  # their other experiences: recalled until the next night learns them again


def forget(agent: Agent, experience_id: int) -> Forgotten:
    """Forget an experience: out of recall at once, and out of the weights by a new version whose
    library lacks the adapter that held it (promoted, with the provenance in its manifest)."""
    from agent.learn import learn_lock

    experience = agent.store.set_experience_status(experience_id, "forgotten")
    model = agent.settings.model
    if not agent.versions.list(model):  # nothing was ever learned on this model
        return Forgotten(experience=experience)
    try:
        with learn_lock(agent, timeout=agent.settings.db_timeout_s):
            version = agent.versions.without(agent.versions.active(model), experience_id)
            if version is None:
                return Forgotten(experience=experience)
            agent.versions.promote(version.id, reason=f"forget experience {experience_id}")
            for other in version.manifest["relearn"]:
                if agent.store.get_experience(other).status == "consolidated":
                    agent.store.set_experience_status(other, "short_term")  # recalled again meanwhile
    except Timeout as exc:
        raise StoreError(f"experience {experience_id} is forgotten by recall, but a learn is running on this "
                         "home: run `reverie memory forget` again once it is done to take it out of the "
                         "weights") from exc
    TastesRead(agent.store, experience.user).clear()  # read from weights that held it
    if agent._backend is not None:
        agent.on_model_thread(agent.sync_version)
    return Forgotten(experience=agent.store.get_experience(experience_id), version=version.id,
                     dropped=version.manifest["dropped"], relearn=version.manifest["relearn"])


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
