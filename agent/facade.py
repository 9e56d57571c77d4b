"""The ``Agent``: what people run and embed. The CLI, and later the server and daemon, call only this.

    from agent import Agent
    with Agent.open() as bot:
        bot.teach("My sister Ines lives in Lisbon.")
        print(bot.chat("Where does Ines live?").text)

Opening is cheap (the SQLite log); the chat model loads on the first turn and episodic memory
on the first recall or teach, so `reverie log` never waits for torch.

All torch work of an agent (loading, generating, embedding) happens on one thread it owns, the
model thread: on a 2-core CPU, torch running on two live threads was measured about 1.6x slower
(README, "Performance"). Callers may use any thread; `on_model_thread` runs their own model
work there too.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from filelock import FileLock
from pydantic import BaseModel

from agent.errors import InvalidInput, ReverieError
from agent.settings import Settings, load_settings
from memory.db import store_error
from memory.records import (
    Experience,
    ExperienceStatus,
    Feedback,
    FeedbackKind,
    Hit,
    ModelVersion,
    NewTurn,
    Thread,
    Turn,
)
from memory.retention import Retention
from memory.store import Store
from memory.versions import Versions

log = logging.getLogger(__name__)


class Reply(BaseModel):
    """One answer of the assistant, as `chat` returns it and `ask --json` prints it."""

    turn_id: int  # the assistant's turn: what feedback points at
    user_turn_id: int
    thread_id: str
    user: str
    text: str
    model_version: str
    verdicts: list[dict[str, Any]]  # from the verify step (CodeJudge, consistency); empty when nothing was checked
    memories: list[dict[str, Any]]  # what recall put into the prompt: kind, id, text, score
    latency_s: float
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop", or "length" when max_new_tokens cut the answer


class Export(BaseModel):
    """Everything reverie holds about a user (or everyone), as `memory export` writes it."""

    format: int = 1
    exported_at: str
    experiences: list[Experience]
    threads: list[Thread]
    turns: list[Turn]
    feedback: list[Feedback]


class LearnReport(BaseModel):
    """What one consolidation did, as `learn` returns it and `learn --json` prints it."""

    run_id: int | None = None  # None when nothing was trained (nothing new, or a dry run)
    dry_run: bool
    user: str
    parent: str  # the version active when it started
    cleaning: dict[str, Any] | None = None  # feedback cleaned first: run_id (the view), method, judged, counts
    stop: str | None = None  # why it ended early
    extracted: list[dict[str, Any]] = []  # informative chat turns turned into experiences
    new: list[int] = []
    deferred: list[int] = []  # new experiences past learn_max_new, left for a later night
    rehearsed: list[int] = []
    synthesis: dict[str, Any] = {}  # per experience: yield, probes set aside, pairs written
    target_set: dict[str, int] | None = None  # sentences by kind: new, rehearsed, replay
    training: dict[str, Any] | None = None
    figures: dict[str, Any] | None = None  # the candidate: efficacy, retention, pollution, general ability
    current: dict[str, Any] | None = None  # the version it started from, for comparison
    passed: bool | None = None
    reasons: list[str] = []  # why the gate refused, one line per failed check
    version: str | None = None
    promoted: bool = False
    consolidated: list[int] = []
    relapsed: list[int] = []
    pruned: list[str] = []
    seconds: float


class ReplyStream:
    """Iterate for text chunks as they are generated; ``reply`` is set once iteration ends."""

    def __init__(self, run: Generator[str, None, Reply]) -> None:
        self._run = run
        self.reply: Reply | None = None

    def __iter__(self) -> Iterator[str]:
        self.reply = yield from self._run


class Agent:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store.open(settings.home, settings.db_timeout_s)
        self.versions = Versions(self.store, settings.home / "versions")
        self.retention = Retention(self.store)
        self._backend = None
        self._graph = None
        self._graph_lock = threading.Lock()
        self._model_thread_id: int | None = None
        self._model_thread = ThreadPoolExecutor(1, "reverie-model", initializer=self._mark_model_thread)

    def _mark_model_thread(self) -> None:
        self._model_thread_id = threading.get_ident()

    def on_model_thread(self, fn: Callable, *args, **kwargs):
        """Run ``fn`` on the thread that does all of this agent's torch work, and return its result."""
        if threading.get_ident() == self._model_thread_id:
            return fn(*args, **kwargs)
        return self._model_thread.submit(fn, *args, **kwargs).result()

    @classmethod
    def open(cls, home: str | Path | None = None, **overrides: Any) -> Agent:
        return cls(load_settings(home, **overrides))

    def close(self) -> None:
        self._model_thread.shutdown(wait=True)
        self.store.close()
        if self._graph is not None:
            self._graph.checkpointer.conn.close()

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the model and the graph, loaded on first use ------------------------------------

    @property
    def backend(self):
        if self._backend is None:
            self.on_model_thread(self._load_backend)
        return self._backend

    def _load_backend(self) -> None:
        """Load the active version of the configured base model (the base itself until a promote)."""
        if self._backend is not None:  # loaded by an earlier call queued on the model thread
            return
        import torch
        import transformers

        from agent.llm.transformers_backend import TransformersBackend

        transformers.utils.logging.disable_progress_bar()
        if self.settings.threads:
            torch.set_num_threads(self.settings.threads)
        s = self.settings
        self._ensure_base()
        active = self.versions.active(s.model)
        self._backend = TransformersBackend(
            self._weights_of(active), name=s.model, version=active.id,
            device=s.device, dtype=s.dtype, max_context=s.context_window,
        )

    def _weights_of(self, version: ModelVersion):
        """Where a version's weights are; the base is resolved afresh (models_dir may have moved)."""
        return version.path if version.parent else self._ensure_base()

    def _ensure_base(self):
        """Register the configured base model as the root of its version line; returns its source."""
        from agent.llm import resolve_model

        base = resolve_model(self.settings.model, self.settings.models_path)
        self.versions.ensure_base(self.settings.model, base)
        return base

    def _sync_version(self) -> None:
        """Serve the active version, if another process (or this one) promoted or rolled back."""
        active = self.versions.active(self.settings.model)
        if self._backend is not None and active.id != self._backend.version:
            self._backend.reload(self._weights_of(active), active.id)

    @property
    def graph(self):
        with self._graph_lock:
            if self._graph is None:
                from graphs.chat import build_chat_graph, sqlite_checkpointer

                path = self.settings.home / "checkpoints.db"
                try:
                    self._graph = build_chat_graph(sqlite_checkpointer(path, self.settings.db_timeout_s))
                except sqlite3.Error as exc:
                    raise store_error(exc, path) from exc
        return self._graph

    @property
    def generation_options(self):
        """How replies are decoded, from the settings."""
        from agent.llm import GenerationOptions

        s = self.settings
        return GenerationOptions(
            max_new_tokens=s.max_new_tokens,
            temperature=s.temperature,
            top_p=s.top_p,
            repetition_penalty=s.repetition_penalty,
        )

    def _verifiers(self) -> list:
        from graphs.verify.nodes import ChoiceCheck, CodeCheck

        s, checks = self.settings, []
        if s.verify_code != "off":
            checks.append(CodeCheck(s.verify_code, s.verify_code_budget_s))
        if s.verify_choices:
            checks.append(ChoiceCheck(s.verify_max_options))
        return checks

    def _context(self):
        from graphs.chat import ChatContext

        s = self.settings
        return ChatContext(
            store=self.store,
            backend=self.backend,
            system_prompt=s.system_prompt,
            options=self.generation_options,
            recall_k=s.recall_k,
            recall_min_score=s.recall_min_score,
            retention=self.retention,  # one per agent: it caches what each version holds
            verifiers=self._verifiers(),
        )

    # -- chatting ------------------------------------------------------------------------

    def chat(self, text: str, thread_id: str | None = None, user: str = "default", *, recall: bool | None = None) -> Reply:
        """Answer ``text`` in ``thread_id`` (a new thread when None), recalling ``user``'s memories."""
        turn = self._prepare(text, thread_id, user, recall)
        return self.on_model_thread(self._turn, *turn)

    def stream(
        self, text: str, thread_id: str | None = None, user: str = "default", *, recall: bool | None = None,
        on_status: Callable[[str], None] | None = None,
    ) -> ReplyStream:
        """Like ``chat``, but iterate the result for text as it is generated. Bad input raises here.

        The turn runs on the model thread. If the caller stops iterating early (or is
        interrupted), generation stops at the next token: the user's message is kept in the
        log, the unfinished reply is not. ``on_status`` hears, on the model thread, what the turn
        does after the text (a verifier checking code, for instance), so a caller can say so.
        """
        graph, context, thread, state_in = self._prepare(text, thread_id, user, recall)
        context.on_status = on_status
        return ReplyStream(self._streamed_turn(graph, context, thread, state_in))

    def _streamed_turn(self, graph, context, thread, state_in) -> Generator[str, None, Reply]:
        chunks: queue.Queue = queue.Queue()
        abandoned = threading.Event()

        def on_text(chunk: str) -> None:
            if abandoned.is_set():
                raise _Abandoned  # unwinds generate() on the model thread
            chunks.put(chunk)

        context.on_text = on_text
        done = self._model_thread.submit(self._turn, graph, context, thread, state_in)
        done.add_done_callback(lambda _: chunks.put(None))
        try:
            while (chunk := chunks.get()) is not None:
                yield chunk
        except BaseException:  # the caller closed the stream, or Ctrl-C
            abandoned.set()
            raise
        return done.result()  # raises what the turn raised

    def _prepare(self, text, thread_id, user, recall):
        """Validate a turn before anything is written; returns what ``_turn`` needs."""
        from graphs.prompt import check_fits

        text, user = _required(text, "message"), _required(user, "user")
        thread = self.store.get_thread(thread_id) if thread_id is not None else None
        if thread is not None and thread.user != user:
            raise InvalidInput(f"thread {thread.id} belongs to user {thread.user!r}, not {user!r}")
        context = self._context()
        check_fits(context.backend.count_chat_tokens, context.system_prompt, text, context.prompt_budget)
        graph = self.graph  # open the checkpointer before the thread exists, so its errors write nothing
        thread = thread or self.store.create_thread(user)
        state_in = {
            "messages": [{"role": "user", "content": text}],
            "user": user,
            "recall": self.settings.recall if recall is None else recall,
            "started_at": time.time(),
            # Per-turn keys start empty: the checkpoint still holds the previous turn's values.
            "memories": [],
            "verdicts": [],
            "turn_ids": {},
        }
        return graph, context, thread, state_in

    def _turn(self, graph, context, thread: Thread, state_in: dict) -> Reply:
        self._sync_version()
        config = {"configurable": {"thread_id": thread.id}}
        locks = self.settings.home / "locks"
        locks.mkdir(exist_ok=True)
        # One turn at a time per thread, across processes: two turns racing on one thread would
        # both extend the same checkpoint and one would vanish from the conversation.
        final: dict = {}
        with FileLock(str(locks / f"thread-{thread.id}.lock")):
            try:
                # "values" mode runs the nodes inline, like invoke, and shows whether log ran.
                for final in graph.stream(state_in, config, context=context, stream_mode="values", durability="exit"):
                    pass
            except BaseException as exc:
                if not final.get("turn_ids"):  # the log node did not write this turn
                    self._keep_user_turn(thread, state_in, exc)
                if isinstance(exc, sqlite3.Error):
                    raise store_error(exc, self.settings.home / "checkpoints.db") from exc
                raise
        reply = final["reply"]
        return Reply(
            turn_id=final["turn_ids"]["assistant"],
            user_turn_id=final["turn_ids"]["user"],
            thread_id=thread.id,
            user=thread.user,
            text=reply["text"],
            model_version=reply["model_version"],
            verdicts=final["verdicts"],
            memories=final["memories"],
            latency_s=round(time.time() - state_in["started_at"], 4),
            prompt_tokens=reply["prompt_tokens"],
            completion_tokens=reply["completion_tokens"],
            finish_reason=reply["finish_reason"],
        )

    def _keep_user_turn(self, thread: Thread, state_in: dict, exc: BaseException) -> None:
        """A turn that failed before it was logged still keeps what the user said."""
        text = state_in["messages"][0]["content"]
        try:
            self.store.record_turns(NewTurn(thread_id=thread.id, user=thread.user, role="user", content=text))
        except ReverieError as second:
            log.error("could not keep the user's message after %r: %s", exc, second)

    # -- teaching, feedback, memories ------------------------------------------------------

    def teach(self, text: str, user: str = "default", probes: list[dict] | None = None) -> int:
        """Remember ``text`` for ``user``; returns the experience id.

        ``probes`` optionally sets aside the questions that will test whether consolidation put
        it into the weights: ``[{"question": ..., "answers": [...], "kind": "recall" | "near_miss"}]``.
        Without them, ``learn`` writes its own before training. Probes are never trained on.
        """
        return self.teach_many([text], user, None if probes is None else [probes])[0]

    def teach_many(self, texts: list[str], user: str = "default", probes: list[list[dict]] | None = None) -> list[int]:
        """Teach several experiences at once: all are remembered, or (on any error) none."""
        cleaned = [_required(t, "experience") for t in texts]
        if not cleaned:
            raise InvalidInput("nothing to teach")
        user = _required(user, "user")
        checked = [_probes(p) for p in probes] if probes is not None else [[] for _ in cleaned]
        if len(checked) != len(cleaned):
            raise InvalidInput("give one list of probes per experience")
        return self.on_model_thread(self._teach, cleaned, user, checked)

    def _teach(self, texts: list[str], user: str, probes: list[list]) -> list[int]:
        with self.store.transaction():
            added = self.store.add_experiences(texts, "taught", user)
            for experience, rows in zip(added, probes):
                if rows:
                    self.retention.add_probes(experience.id, rows, origin="given")
        return [e.id for e in added]

    def feedback(
        self,
        turn_id: int,
        kind: FeedbackKind,
        *,
        text: str | None = None,
        payload: dict[str, Any] | None = None,
        user: str | None = None,
    ) -> Feedback:
        """Record feedback on an assistant turn (raw feedback is append-only: never edited).

        ``up``/``down`` take an optional comment ``text``; ``comment`` needs ``text``;
        ``correction`` needs ``text`` (the right answer), which is also remembered as an
        experience so later turns recall it; ``preference`` needs ``payload={"chosen": ...,
        "rejected": ...}`` (two answers to the turn's question; ``better=TEXT`` in ``payload``
        is short for TEXT chosen over this turn's answer).
        """
        turn = self.store.get_turn(turn_id)
        if turn.role != "assistant":
            raise InvalidInput(f"turn {turn_id} is the user's; feedback goes on the assistant's turns")
        user = _required(user, "user") if user is not None else turn.user
        payload = dict(payload or {})
        if text is not None:
            payload["text"] = _required(text, "feedback text")
        if kind in ("correction", "comment") and "text" not in payload:
            raise InvalidInput(f"a {kind} needs its text")
        if kind == "preference":
            if "better" in payload:
                if not turn.content.strip():
                    raise InvalidInput(f"turn {turn_id} has no answer text to prefer another answer over")
                payload = {"chosen": _required(payload.pop("better"), "better answer"), "rejected": turn.content, **payload}
            if not all(isinstance(payload.get(k), str) and payload[k].strip() for k in ("chosen", "rejected")):
                raise InvalidInput("a preference needs two answers: payload={'chosen': ..., 'rejected': ...}")
        return self.on_model_thread(self._record_feedback, turn_id, kind, user, payload or None)

    def import_feedback(self, lines: list[str], fmt: str = "trl", *, user: str = "default",
                        source: str | None = None) -> dict[str, Any]:
        """Import a preference dataset (TRL JSONL or HH-RLHF); bad lines are reported, the rest kept.

        Returns ``{"imported": [{"line", "feedback_id"}], "errors": [{"line", "reason"}]}``. A
        line's own ``source`` field (a rater) wins over ``source`` (default: ``import``).
        """
        from memory.preference_formats import read_preferences

        user = _required(user, "user")
        good, bad = read_preferences(lines, fmt)
        rows = [(None, "preference", user, pref.payload(), pref.source or source or "import") for _, pref in good]
        written = self.store.record_feedback_many(rows) if rows else []
        return {"imported": [{"line": n, "feedback_id": f.id} for (n, _), f in zip(good, written)],
                "errors": [{"line": n, "reason": reason} for n, reason in bad]}

    def list_feedback(self, user: str | None = None, kind: str | None = None) -> list[Feedback]:
        return [f for f in self.store.list_feedback(user=user) if kind is None or f.kind == kind]

    def show_feedback(self, feedback_id: int) -> dict[str, Any]:
        """One piece of feedback as given, with every cleaning decision about it (newest last)."""
        from memory.cleaning import Cleaning

        raw = self.store.get_feedback(feedback_id)
        cleaning = Cleaning(self.store)
        decisions = [{"run_id": run["id"], "method": run["method"], **d}
                     for run in cleaning.runs() for d in cleaning.decisions(run["id"]) if d["feedback_id"] == feedback_id]
        return {"feedback": raw, "decisions": decisions}

    def committee(self, members: list | None = None):
        """The cleaning committee: ``members`` (objects with ``key`` and ``judge``), else the settings'."""
        from graphs.committee import CodeJudgeMember, Committee, ModelJudge, RewardModel
        from memory.cleaning import Cleaning

        if members is None:
            members = []
            for spec in self.settings.clean_committee:
                kind, _, arg = spec.partition(":")
                if kind == "judge":
                    members.append(ModelJudge(self.backend, arg))
                elif kind == "codejudge":
                    members.append(CodeJudgeMember(self.backend))
                elif kind == "rm" and arg:
                    members.append(RewardModel(arg, device="cuda" if self.settings.device.startswith("cuda") else "cpu"))
                else:
                    raise InvalidInput(f"unknown committee member {spec!r}; use judge:CRITERION, codejudge or rm:MODEL")
        if not members:
            raise InvalidInput("the committee has no members")
        return Committee(members, Cleaning(self.store))

    def clean_feedback(self, method: str = "sac", *, dry_run: bool = False, members: list | None = None,
                       on_item: Callable[[], None] | None = None):
        """Clean the feedback log into a new version of the cleaned view; returns a ``CleaningReport``."""
        from graphs.cleaning import clean

        def work():
            return clean(self.store, self.committee(members), method, dry_run=dry_run, on_item=on_item)

        return self.on_model_thread(work)

    def feedback_to_clean(self, method: str = "sac", members: list | None = None) -> int:
        from graphs.cleaning import pending

        keys = [m.key for m in members] if members is not None else None
        return pending(self.store, method, keys if keys is not None else self.on_model_thread(lambda: self.committee().keys))

    def export_feedback(self, cleaned: bool = False, run_id: int | None = None) -> list[dict[str, Any]]:
        """Preference pairs as TRL conversational JSONL rows: raw, or the cleaned view's."""
        from graphs.cleaning import cleaned_preferences, items_from
        from memory.preference_formats import to_trl

        if cleaned:
            rows = cleaned_preferences(self.store, run_id)
        else:
            rows = [{"prompt": i.prompt, "chosen": i.answers[0], "rejected": i.answers[1]}
                    for i in items_from(self.store, self.list_feedback(kind="preference"))]
        return [to_trl(r["prompt"], r["chosen"], r["rejected"]) for r in rows]

    def _record_feedback(self, turn_id: int, kind: FeedbackKind, user: str, payload: dict | None) -> Feedback:
        with self.store.transaction():  # a correction is feedback and an experience, or neither
            recorded = self.store.record_feedback(turn_id, kind, user, payload)
            if kind == "correction":
                self.store.add_experiences([payload["text"]], "correction", user, turn_id=turn_id)
        return recorded

    def memories(self, user: str | None = None, include_forgotten: bool = False) -> list[Experience]:
        statuses: list[ExperienceStatus] | None = None if include_forgotten else ["short_term", "consolidated"]
        return self.store.list_experiences(user=user, statuses=statuses)

    def search(self, query: str, user: str = "default", k: int = 5, turns: bool = False) -> list[Hit]:
        """Semantic search over ``user``'s memories (and, with ``turns``, what they said in chats)."""
        kinds = ("experience", "turn") if turns else ("experience",)
        query = _required(query, "query")
        return self.on_model_thread(self.store.search, query, user=user, k=k, kinds=kinds, statuses=None)

    def forget(self, experience_id: int) -> Experience:
        """Never recall (or learn from) this experience again; its row stays for the audit trail."""
        return self.store.set_experience_status(experience_id, "forgotten")

    def reindex(self) -> int:
        """Rebuild episodic memory from the log; returns how many entries it holds."""
        return self.on_model_thread(self.store.reindex)

    # -- model versions --------------------------------------------------------------------

    def models(self) -> list[ModelVersion]:
        """The versions of the configured base model, oldest first."""
        self._ensure_base()
        return self.versions.list(self.settings.model)

    def model(self, version_id: str) -> ModelVersion:
        return self.versions.get(version_id)

    def active_model(self) -> ModelVersion:
        self._ensure_base()
        return self.versions.active(self.settings.model)

    def promote(self, version_id: str, reason: str | None = None) -> ModelVersion:
        """Serve ``version_id`` from the next turn on, here and in every process on this home."""
        version = self.versions.get(version_id)
        if version.base_model != self.settings.model:
            raise InvalidInput(f"{version_id} belongs to {version.base_model}, not to {self.settings.model}")
        return self.versions.promote(version_id, reason)

    def rollback(self, to: str | None = None, reason: str | None = None) -> ModelVersion:
        """Serve ``to`` (default: the active version's parent) from the next turn on."""
        self._ensure_base()
        return self.versions.rollback(self.settings.model, to, reason)

    def diff(self, a: str, b: str) -> dict[str, Any]:
        return self.versions.diff(a, b)

    def prune(self, keep: int) -> list[str]:
        """Delete the weights of old versions (never the active one, its parent or the base)."""
        if keep < 0:
            raise InvalidInput("keep must be 0 or more")
        self._ensure_base()
        return self.versions.prune(self.settings.model, keep)

    # -- learning ----------------------------------------------------------------------------

    def learn(self, user: str = "default", *, dry_run: bool = False, only: str | None = None,
              progress=None) -> LearnReport:
        """Consolidate ``user``'s new experiences into a new model version now (one "night").

        Promotes the version only if the gate passes, and serves it from the next turn on. With
        ``dry_run``, shows what would be learned (the QA pairs and probes it would write) and
        writes nothing.
        """
        if only not in (None, "selfparam"):
            raise InvalidInput(f"unknown learner {only!r}; the learners are: selfparam")
        user = _required(user, "user")
        report = self.on_model_thread(self._learn, user, dry_run, progress)
        return LearnReport(**{k: report.get(k) for k in LearnReport.model_fields if k in report})

    def _learn(self, user: str, dry_run: bool, progress) -> dict:
        from graphs.nightly import NightContext, NullProgress, run_night
        from learners.evaluate import GateThresholds
        from learners.selfparam import SelfParamConfig
        from learners.synthesis import SynthesisConfig

        s = self.settings
        base_source = self._ensure_base()
        locks = s.home / "locks"
        locks.mkdir(exist_ok=True)
        # One night at a time per home: two would both train from the same parent and race to promote.
        with FileLock(str(locks / "learn.lock")):
            context = NightContext(
                store=self.store, retention=self.retention, versions=self.versions, base_model=s.model,
                active=self.versions.active(s.model), load_base=lambda: self._load_weights(base_source),
                make_backend=self._backend_over, user=user, system_prompt=s.system_prompt,
                selfparam=SelfParamConfig(lr=s.learn_lr, epochs=s.learn_epochs, batch_size=s.learn_batch_size,
                                          lora_r=s.learn_lora_r, lora_alpha=2 * s.learn_lora_r,
                                          teacher_cache_mb=s.learn_teacher_cache_mb),
                synthesis=SynthesisConfig(samples=s.synthesis_samples, cloze=s.synthesis_rule_questions),
                thresholds=GateThresholds(s.gate_min_efficacy, s.gate_retention_tolerance, s.gate_general_tolerance,
                                          s.gate_perplexity_tolerance),
                cache=s.home / "cache", generator=self._generator(), rehearse=s.learn_rehearse, max_new=s.learn_max_new,
                replay=s.learn_replay, probes_per_experience=s.learn_probes, extract_turns=s.learn_extract_turns,
                keep_versions=s.keep_versions, dry_run=dry_run, progress=progress or NullProgress(),
            )
            if s.learn_clean_feedback and not dry_run:
                context.pending_feedback = self.feedback_to_clean(s.clean_method)
                context.clean = lambda advance: self.clean_feedback(s.clean_method, on_item=advance)
            report = run_night(context)
        if report.get("promoted"):
            self._sync_version()  # hot reload: the next turn answers from the new weights
        return report

    def _load_weights(self, source):
        from agent.llm.transformers_backend import load_pretrained, pick_device, pick_dtype

        device = pick_device(self.settings.device)
        return load_pretrained(source, device, pick_dtype(self.settings.dtype, device))

    def _backend_over(self, tokenizer, model, version: str):
        from agent.llm.transformers_backend import TransformersBackend

        return TransformersBackend.from_model(tokenizer, model, name=self.settings.model, version=version,
                                              max_context=self.settings.context_window)

    def _generator(self):
        """The question writer, when one other than the served model is configured."""
        s = self.settings
        if not s.generator_model:
            return None
        from agent.llm.openai_endpoint import PREFIX, OpenAIEndpoint

        if s.generator_model.startswith(PREFIX):
            key = s.generator_api_key.get_secret_value() if s.generator_api_key else os.environ.get("OPENAI_API_KEY")
            return OpenAIEndpoint(s.generator_model[len(PREFIX) :], s.generator_base_url, key)
        from agent.llm import load_backend

        return load_backend(s.generator_model, models_dir=s.models_path, device=s.device, dtype=s.dtype)

    def retention_report(self) -> dict[str, Any]:
        """Probe scores per experience and learn run, and the curves of efficacy and retention by age."""
        self._ensure_base()
        return self.retention.report(self.settings.model)

    # -- judging -------------------------------------------------------------------------

    def judge_code(self, problem: str, code: str, *, language: str | None = "python", reference: str | None = None,
                   examples: str = "", mode: str = "binary", samples: int = 1):
        """CodeJudge: is ``code`` a correct answer to ``problem``? Returns a ``CodeVerdict``."""
        from graphs.verify.codejudge import CodeTask, JudgeConfig, judge_code, language_name

        task = CodeTask(problem, code, language_name(language) if language else None, examples, reference)
        return self.on_model_thread(judge_code, self.backend, task, mode, JudgeConfig(samples=samples))

    def rank(self, instruction: str, items: list[str], *, negated_instruction: str | None = None, k: int = 3,
             on_pair: Callable[[], None] | None = None):
        """Rank ``items`` best first by merge sort on the calibrated comparator, with the judge's
        consistency over all pairs. Returns a ``Ranking``."""
        from graphs.verify.consistency import rank

        return self.on_model_thread(rank, self.backend, instruction, items, negated_instruction=negated_instruction,
                                    k=k, on_pair=on_pair)

    def consistency(self, sets: list, *, k: int = 3, on_pair: Callable[[], None] | None = None) -> dict[str, Any]:
        """s_comm, s_neg and s_tran(k) of the comparator on ``sets`` (``ConsistencySet`` or dicts)."""
        from graphs.verify.consistency import ConsistencySet, check_sets

        sets = [s if isinstance(s, ConsistencySet) else ConsistencySet.model_validate(s) for s in sets]
        return self.on_model_thread(check_sets, self.backend, sets, k, on_pair)

    # -- reading the log -----------------------------------------------------------------

    def log(self, thread_id: str | None = None, user: str | None = None, limit: int | None = None) -> list[Turn]:
        if thread_id is not None:
            self.store.get_thread(thread_id)
        return self.store.list_turns(thread_id=thread_id, user=user, limit=limit)

    def threads(self, user: str | None = None) -> list[Thread]:
        return self.store.list_threads(user=user)

    def export(self, user: str | None = None) -> Export:
        from memory.db import now

        return Export(
            exported_at=now(),
            experiences=self.store.list_experiences(user=user),
            threads=self.store.list_threads(user=user),
            turns=self.store.list_turns(user=user),
            feedback=self.store.list_feedback(user=user),
        )

    def paths(self) -> dict[str, str]:
        home = self.settings.home
        return {
            "home": str(home),
            "config": str(home / "reverie.toml"),
            "database": str(self.store.path),
            "checkpoints": str(home / "checkpoints.db"),
            "episodic": str(self.store.index.folder),
            "models": str(self.settings.models_path),
        }


class _Abandoned(Exception):
    """Raised inside generation when nobody reads the stream any more."""


def _probes(rows: Any) -> list[tuple[str, list[str], str]]:
    """Validate given probes: a question, one or more answers, and a kind."""
    out = []
    for row in rows or []:
        if not isinstance(row, dict):
            raise InvalidInput("a probe is {'question': ..., 'answers': [...], 'kind': 'recall' | 'near_miss'}")
        kind = row.get("kind", "recall")
        if kind not in ("recall", "near_miss"):
            raise InvalidInput(f"probe kind must be recall or near_miss, not {kind!r}")
        answers = row.get("answers") or []
        if isinstance(answers, str) or not all(isinstance(a, str) and a.strip() for a in answers) or not answers:
            raise InvalidInput("a probe needs a list of non-empty answers")
        out.append((_required(row.get("question"), "probe question"), [a.strip() for a in answers], kind))
    return out


def _required(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"empty {what}")
    if "\x00" in value:
        raise InvalidInput(f"the {what} contains a NUL byte")
    return value.strip()
