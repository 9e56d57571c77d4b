"""The records of the experience log, as the API returns them (and ``--json`` prints them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Role = Literal["user", "assistant"]
FeedbackKind = Literal["up", "down", "correction", "preference", "comment"]
ExperienceSource = Literal["taught", "extracted", "correction"]
ExperienceStatus = Literal["short_term", "consolidated", "forgotten"]


class Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class Thread(Record):
    id: str
    user: str
    created_at: str


class NewTurn(Record):
    """A turn before it is written: the log assigns id and time."""

    thread_id: str
    user: str
    role: Role
    content: str
    model_version: str | None = None
    latency_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    verdicts: list[dict[str, Any]] = []  # what the verifiers said about an assistant turn


class Turn(NewTurn):
    """A turn as logged."""

    id: int
    created_at: str


class Feedback(Record):
    id: int
    turn_id: int | None  # None for an imported preference pair
    kind: FeedbackKind
    payload: dict[str, Any] | None = None
    user: str
    source: str = "user"  # who gave it: "user", or the rater / file of an import
    created_at: str


class Experience(Record):
    id: int
    text: str
    source: ExperienceSource
    user: str
    status: ExperienceStatus
    turn_id: int | None = None
    created_at: str
    updated_at: str


class Hit(Record):
    """One result of a semantic search over episodic memory."""

    kind: Literal["experience", "turn"]
    id: int  # the experience id or the turn id
    text: str
    score: float  # cosine similarity in [-1, 1]; higher is closer
    user: str


class ModelVersion(Record):
    """A model version: an immutable folder of weights (or a LoRA adapter) and its manifest."""

    id: str  # "base" for the base model, then v1, v2, ...
    parent: str | None
    base_model: str  # the model spec the version was trained from
    path: str  # its folder
    learner: str | None  # None for the base
    manifest: dict[str, Any]  # settings, consumed experiences and feedback, figures, gate decision
    created_at: str
    pruned_at: str | None = None  # its folder was deleted by the keep-policy


class Adapter(Record):
    """One frozen LoRA adapter of a version's library: what one user's night (or part of it) learned.

    Adapters are written once by the version that made them and are never changed; later versions
    list them again (by the version that holds their folder), so a night adds and never overwrites."""

    name: str  # unique in the line: "<version>.<k>", also what a turn asks the backend for
    version: str  # the version whose folder holds the weights
    user: str  # whose experiences it holds: only that user's turns ever load it
    experiences: list[int]
    path: str  # its folder
    kind: str = "knowledge"  # or "policy": a refined policy (CORY), merged into every turn of its user


class VersionEvent(Record):
    id: int
    base_model: str
    version: str
    action: Literal["promote", "rollback"]
    reason: str | None = None
    created_at: str


ProbeKind = Literal["recall", "near_miss"]


class Probe(Record):
    """A question set aside for an experience, never trained on, scored after every learn run.

    ``recall`` probes ask for the experience's content (answers: acceptable short answers);
    ``near_miss`` probes ask for something the experience does not say (knowledge pollution).
    """

    id: int
    experience_id: int
    question: str
    answers: list[str]
    kind: ProbeKind
    origin: Literal["given", "synthesized"]
    created_at: str


class ProbeResult(Record):
    run_id: int
    probe_id: int
    version: str
    answer: str
    contains: float
    f1: float
    created_at: str


class Job(Record):
    """One run of background work (a scheduled or requested night), claimed under a lease."""

    id: int
    kind: str
    trigger: Literal["schedule", "manual", "retry", "idle"]
    run_key: str
    attempt: int
    status: Literal["scheduled", "running", "succeeded", "failed", "interrupted"]
    owner: str | None = None
    lease_until: str | None = None
    report: dict[str, Any] | None = None
    error: str | None = None
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None


class LearnRun(Record):
    """One consolidation ("night"): the version it started from, what it made, whether it was promoted."""

    id: int
    base_model: str
    parent: str
    version: str | None
    promoted: bool
    report: dict[str, Any] | None
    started_at: str
    finished_at: str | None
    status: Literal["running", "finished", "interrupted"] = "finished"  # interrupted: stopped, or found abandoned


class Catalogue(Record):
    name: str
    items: int
    fields: list[str]  # the metadata its items carry besides id and title
    source: str | None = None
    created_at: str


class CatalogueItem(Record):
    id: str
    title: str
    fields: dict[str, Any] = {}
