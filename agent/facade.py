"""The ``Agent``: what people run and embed. The CLI, the server and the daemon call only this.

    from agent import Agent
    with Agent.open() as bot:
        bot.teach("My sister Ines lives in Lisbon.")
        print(bot.chat("Where does Ines live?").text)

This class is the one face: its lifecycle, the model thread, hot reload, and one-line delegations
to the module that owns each noun (``agent.chat``, ``feedback``, ``judges``, ``learn``, ``memories``,
``recommend``); ``catalogues`` (``memory.catalogue``) lists, shows and removes catalogues.
Opening is cheap (the SQLite log); the chat model loads on the first turn and episodic memory on
the first recall or teach, so `reverie log` never waits for torch.

All torch work of an agent (loading, generating, embedding, training) happens on one thread it
owns, the model thread: on a 2-core CPU, torch running on two live threads was measured about
1.6x slower (README, "Performance"). Callers may use any thread; `on_model_thread` runs their
own model work there too.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agent import chat as chatting
from agent import feedback as feedbacks
from agent import judges
from agent import learn as learning
from agent import memories as remembering
from agent import recommend as recommending
from agent.chat import Reply, ReplyStream
from agent.errors import InvalidInput, ReverieError
from agent.inputs import required
from agent.judges import Card, Modes
from agent.learn import LearnReport
from agent.memories import Export, Forgotten
from agent.settings import Settings, load_settings
from learners.training import Progress
from memory.catalogue import Catalogue, Catalogues
from memory.db import store_error
from memory.records import Experience, ExperienceStatus, Feedback, FeedbackKind, Hit, ModelVersion, Thread, Turn
from memory.retention import Retention
from memory.store import Store
from memory.versions import Versions

__all__ = ["Agent", "Export", "LearnReport", "Reply", "ReplyStream"]

log = logging.getLogger(__name__)


class Agent:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store.open(settings.home, settings.db_timeout_s)
        self.versions = Versions(self.store, settings.home / "versions")
        self.retention = Retention(self.store)
        self.catalogues = Catalogues(self.store, settings.home / "catalogues")
        self._backend = None
        self.library: list = []  # the served version's frozen adapters (memory.records.Adapter)
        self._graph = None
        self._graph_lock = threading.Lock()
        self._model_thread_id: int | None = None
        self._model_thread = ThreadPoolExecutor(1, "reverie-model", initializer=self._mark_model_thread)
        # Set to stop the model thread's work at its next token or training step (Ctrl-C).
        self.stopping = threading.Event()
        try:
            learning.recover(self)  # a night killed earlier: finish its run, clear its debris
        except ReverieError as exc:  # a read-only home, say: the next learn tries again
            log.debug("could not finish abandoned learn runs: %s", exc)

    @classmethod
    def open(cls, home: str | Path | None = None, **overrides: Any) -> Agent:
        return cls(load_settings(home, **overrides))

    def close(self) -> None:
        # After a stop request nobody waits for the model thread: it was told to stop.
        self._model_thread.shutdown(wait=not self.stopping.is_set(), cancel_futures=True)
        self.catalogues.close()
        self.store.close()
        if self._graph is not None:
            self._graph.checkpointer.conn.close()

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the model thread ------------------------------------------------------------------

    def _mark_model_thread(self) -> None:
        self._model_thread_id = threading.get_ident()

    def on_model_thread(self, fn: Callable, *args, **kwargs):
        """Run ``fn`` on the thread that does all of this agent's torch work, and return its result."""
        if threading.get_ident() == self._model_thread_id:
            return fn(*args, **kwargs)
        future = self._model_thread.submit(fn, *args, **kwargs)
        try:
            return future.result()
        except KeyboardInterrupt:
            # Ctrl-C: ask the work to stop at its next token or step (seconds), then wait for it, so
            # it leaves everything consistent. A second Ctrl-C while waiting leaves at once.
            self.stopping.set()
            try:
                result = future.result()
            except KeyboardInterrupt:
                raise  # the stop request stays set, so close() does not wait either
            except BaseException:
                self.stopping.clear()
                raise
            self.stopping.clear()
            return result

    def submit(self, fn: Callable, *args, **kwargs) -> Future:
        """Queue ``fn`` on the model thread without waiting for it."""
        return self._model_thread.submit(fn, *args, **kwargs)

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
        known = {v.id for v in self.versions.list(s.model)}
        self.ensure_base()
        active = self.versions.active(s.model)
        try:
            self._backend = TransformersBackend(
                self._weights_of(active), name=s.model, version=active.id,
                device=s.device, dtype=s.dtype, max_context=s.context_window, adapter_memory_mb=s.adapter_memory_mb)
        except BaseException:
            if active.id not in known:  # registered just now for a model that does not load
                self.versions.forget_base(active.id)
            raise
        self._backend.stop = self.stopping
        self._attach(active)

    def _weights_of(self, version: ModelVersion):
        """A pre-0.2 version's own folder, else the base (resolved afresh: models_dir may move)."""
        return self.versions.weights(version) or self.ensure_base()

    def _attach(self, version: ModelVersion) -> None:
        self.library = self.versions.library(version)  # the version's adapters, by name, to the backend
        self._backend.attach({a.name: a.path for a in self.library})

    def ensure_base(self):
        """Register the configured base model as the root of its version line; returns its source."""
        from agent.llm import resolve_model

        base = resolve_model(self.settings.model, self.settings.models_path)
        self.versions.ensure_base(self.settings.model, base)
        return base

    def sync_version(self) -> None:
        """Serve the active version, if another process (or this one) promoted or rolled back."""
        active = None if self._backend is None else self.versions.active(self.settings.model)  # none loaded: none to sync
        if active is not None and active.id != self._backend.version:
            self._backend.reload(self._weights_of(active), active.id)
            self._attach(active)

    @property
    def graph(self):
        """The chat graph over this home's checkpoints, compiled once."""
        with self._graph_lock:
            if self._graph is None:
                from graphs.chat import build_chat_graph, sqlite_checkpointer

                path = self.settings.home / "checkpoints.db"
                try:
                    self._graph = build_chat_graph(sqlite_checkpointer(path, self.settings.db_timeout_s))
                except sqlite3.Error as exc:
                    raise store_error(exc, path) from exc
        return self._graph

    # -- chatting (agent.chat) ---------------------------------------------------------------

    def chat(self, text: str, thread_id: str | None = None, user: str = "default", *, recall: bool | None = None,
             history: list[dict] | None = None, options: dict[str, Any] | None = None) -> Reply:
        """Answer ``text`` in ``thread_id`` (new when None or unknown), recalling ``user``'s memories.
        A new thread may start from ``history`` (earlier user and assistant messages); ``options``
        override this turn's decoding (``max_new_tokens``, ``temperature``, ``top_p``, ``seed``)."""
        turn = chatting.prepare(self, text, thread_id, user, recall, history, options)
        return self.on_model_thread(chatting.run, self, turn)

    def stream(
        self, text: str, thread_id: str | None = None, user: str = "default", *, recall: bool | None = None,
        on_status: Callable[[str], None] | None = None, history: list[dict] | None = None, options: dict | None = None,
    ) -> ReplyStream:
        """Like ``chat``, but iterate the result for text as it is generated. Bad input raises here.
        Stopping early stops generation at the next token: the user's message is logged, the
        unfinished reply is not. ``on_status`` hears what the turn does after the text (on the model thread)."""
        return chatting.stream(self, chatting.prepare(self, text, thread_id, user, recall, history, options), on_status)

    def repair_thread(self, thread_id: str) -> int:
        """Rebuild a thread's saved conversation from the log (after a damaged checkpoint); returns
        how many messages it now holds."""
        return chatting.repair(self, thread_id)

    # -- teaching and memories (agent.memories) ----------------------------------------------

    def teach(self, text: str, user: str = "default", probes: list[dict] | None = None) -> int:
        """Remember ``text`` for ``user``; returns the experience id. ``probes`` (never trained on) test
        whether a night put it into the weights: ``[{"question", "answers": [...], "kind": "recall" |
        "near_miss"}]``; without them, ``learn`` writes its own."""
        return self.teach_many([text], user, None if probes is None else [probes])[0]

    def teach_many(self, texts: list[str], user: str = "default", probes: list[list[dict]] | None = None) -> list[int]:
        """Teach several experiences at once: all are remembered, or (on any error) none."""
        return remembering.teach(self, texts, user, probes)

    def memories(self, user: str | None = None, include_forgotten: bool = False) -> list[Experience]:
        statuses: list[ExperienceStatus] | None = None if include_forgotten else ["short_term", "consolidated"]
        return self.store.list_experiences(user=user, statuses=statuses)

    def search(self, query: str, user: str = "default", k: int = 5, turns: bool = False) -> list[Hit]:
        """Semantic search over ``user``'s memories (and, with ``turns``, what they said in chats)."""
        kinds = ("experience", "turn") if turns else ("experience",)
        return self.on_model_thread(self.store.search, required(query, "query"), user=user, k=k, kinds=kinds,
                                    statuses=None)

    def forget(self, experience_id: int) -> Forgotten:
        """Never recall or learn from this experience again, and take it out of the weights (a new
        version without the adapter that held it); its row stays for the audit trail."""
        return remembering.forget(self, experience_id)

    def reindex(self) -> int:
        """Rebuild episodic memory from the log; returns how many entries it holds."""
        return self.on_model_thread(self.store.reindex)

    def export(self, user: str | None = None) -> Export:
        return remembering.export(self, user)

    # -- feedback (agent.feedback) -----------------------------------------------------------

    def feedback(self, turn_id: int, kind: FeedbackKind, *, text: str | None = None,
                 payload: dict[str, Any] | None = None, user: str | None = None) -> Feedback:
        """Record feedback on an assistant turn (append-only). ``up``/``down`` take an optional comment
        ``text``; ``comment`` and ``correction`` (also remembered as an experience) need ``text``;
        ``preference`` needs ``payload={"chosen", "rejected"}`` (or ``{"better": TEXT}``)."""
        return feedbacks.record(self, turn_id, kind, text, payload, user)

    def import_feedback(self, lines: list[str], fmt: str = "trl", *, user: str = "default",
                        source: str | None = None) -> dict[str, Any]:
        """Import a preference dataset (TRL JSONL or HH-RLHF); bad lines are reported, the rest kept:
        ``{"imported": [{"line", "feedback_id"}], "errors": [{"line", "reason"}]}``. A line's own
        ``source`` (a rater) wins over ``source`` (default: ``import``)."""
        return feedbacks.import_lines(self, lines, fmt, user, source)

    def list_feedback(self, user: str | None = None, kind: str | None = None) -> list[Feedback]:
        return [f for f in self.store.list_feedback(user=user) if kind is None or f.kind == kind]

    def show_feedback(self, feedback_id: int) -> dict[str, Any]:
        """One piece of feedback as given, with every cleaning decision about it (newest last)."""
        return feedbacks.show(self, feedback_id)

    def committee(self, members: list | None = None):
        """The cleaning committee: ``members`` (objects with ``key`` and ``judge``), else the settings'."""
        return self.on_model_thread(feedbacks.committee, self, members)

    def clean_feedback(self, method: str = "sac", *, dry_run: bool = False, members: list | None = None,
                       on_item: Callable[[], None] | None = None, progress: Progress | None = None):
        """Clean the feedback log into a new version of the cleaned view (applied, or only audited
        when the committee's measured accuracy is too low); returns a ``CleaningReport``."""
        return feedbacks.clean(self, method, dry_run, members, on_item, progress)

    def feedback_to_clean(self, method: str = "sac", members: list | None = None) -> int:
        return feedbacks.pending(self, method, members)

    def export_feedback(self, cleaned: bool = False, run_id: int | None = None, *,
                        repaired: bool = False) -> list[dict[str, Any]]:
        """Preference pairs as TRL conversational JSONL rows: raw, or the cleaned view's; with
        ``repaired``, each prompt's pairs made transitive and complete (REPAIR)."""
        return feedbacks.export(self, cleaned, run_id, repaired)

    # -- model versions --------------------------------------------------------------------

    def models(self) -> list[ModelVersion]:
        """The versions of the configured base model, oldest first."""
        self.ensure_base()
        return self.versions.list(self.settings.model)

    def model(self, version_id: str) -> ModelVersion:
        return self.versions.get(version_id)

    def active_model(self) -> ModelVersion:
        self.ensure_base()
        return self.versions.active(self.settings.model)

    def promote(self, version_id: str, reason: str | None = None) -> ModelVersion:
        """Serve ``version_id`` from the next turn on, here and in every process on this home."""
        version = self.versions.get(version_id)
        if version.base_model != self.settings.model:
            raise InvalidInput(f"{version_id} belongs to {version.base_model}, not to {self.settings.model}")
        return self.versions.promote(version_id, reason)

    def rollback(self, to: str | None = None, reason: str | None = None) -> ModelVersion:
        """Serve ``to`` (default: the active version's parent) from the next turn on."""
        self.ensure_base()
        return self.versions.rollback(self.settings.model, to, reason)

    def diff(self, a: str, b: str) -> dict[str, Any]:
        return self.versions.diff(a, b)

    def prune(self, keep: int) -> list[str]:
        """Delete the weights of old versions (never the active one, its parent or the base).
        Waits up to ``db_timeout_s`` for a night that is writing a version to finish."""
        return learning.prune(self, keep)

    # -- learning (agent.learn) ----------------------------------------------------------------

    def learn(self, user: str = "default", *, dry_run: bool = False, only: str | None = None,
              progress: Progress | None = None) -> LearnReport:
        """Run a night now: clean new feedback, consolidate ``user``'s new experiences into a new
        version (SELF-PARAM), then refine their policy (CORY) when ``[refine] reward`` is set; each
        promoted only if its gate passes, served from the next turn on. ``only``: one step (clean,
        selfparam or cory). ``dry_run`` shows what would be learned and writes nothing."""
        return learning.learn(self, user, dry_run, only, progress)

    def retention_report(self) -> dict[str, Any]:
        """Probe scores per learn run, efficacy and retention by age, and refines' reward/KL curves."""
        self.ensure_base()
        return {**self.retention.report(self.settings.model), "refines": learning.refines(self)}

    # -- judging (how far to trust the judges: agent.judges) ------------------------------

    def card(self, model: str | None = None, *, refresh: bool = False, progress: Progress | None = None) -> Card:
        """The card of ``model`` (default: the configured one): cached, or measured now (minutes)."""
        return (not refresh and judges.load_card(self.settings, model)) or self.on_model_thread(
            judges.measure, self, model, progress)

    def judge_modes(self) -> Modes:
        """What the judges do on this model, and why, from its cached card (never measures)."""
        return judges.modes(self.settings, judges.load_card(self.settings))

    def judge_code(self, problem: str, code: str, *, language: str | None = "python", reference: str | None = None,
                   examples: str = "", mode: str = "binary", samples: int = 1):
        """CodeJudge: is ``code`` a correct answer to ``problem``? Returns a ``CodeVerdict``."""
        return self.on_model_thread(judges.judge_code, self, problem, code, language, reference, examples, mode, samples)

    def rank(self, instruction: str, items: list[str], *, negated_instruction: str | None = None, k: int = 3,
             on_pair: Callable[[], None] | None = None):
        """``items`` best first (merge sort, calibrated comparator) and its consistency: a ``Ranking``."""
        return self.on_model_thread(judges.rank, self, instruction, items, negated_instruction, k, on_pair)

    def consistency(self, sets: list, *, k: int = 3, on_pair: Callable[[], None] | None = None) -> dict[str, Any]:
        """s_comm, s_neg and s_tran(k) of the comparator on ``sets`` (``ConsistencySet`` or dicts)."""
        return self.on_model_thread(judges.consistency, self, sets, k, on_pair)

    # -- recommending (agent.recommend) ------------------------------------------------------

    def import_catalogue(self, path: str | Path, name: str | None = None, *, replace: bool = False,
                         progress: Progress | None = None) -> Catalogue:
        """Import a JSONL catalogue (``id``, ``title``, any metadata): all lines, or none."""
        return recommending.import_catalogue(self, path, name, replace, progress)

    def recommend(self, messages: list[dict] | None = None, *, thread_id: str | None = None,
                  catalogue: str | None = None, k: int | None = None, user: str = "default",
                  recall: bool | None = None, on_status: Callable[[str], None] | None = None):
        """Up to ``k`` items of ``catalogue`` for a conversation (``messages``, or a logged thread),
        each with a reason; no stated constraint is ever violated: a ``Recommendation``."""
        return recommending.recommend(self, messages, thread_id, catalogue, k, user, recall, on_status)

    # -- reading the log -----------------------------------------------------------------

    def log(self, thread_id: str | None = None, user: str | None = None, limit: int | None = None) -> list[Turn]:
        if thread_id is not None:
            self.store.get_thread(thread_id)
        return self.store.list_turns(thread_id=thread_id, user=user, limit=limit)

    def threads(self, user: str | None = None) -> list[Thread]:
        return self.store.list_threads(user=user)

    def paths(self) -> dict[str, str]:
        home = self.settings.home
        return {"home": str(home), "config": str(home / "reverie.toml"), "database": str(self.store.path),
                "checkpoints": str(home / "checkpoints.db"), "episodic": str(self.store.index.folder),
                "catalogues": str(self.catalogues.folder), "models": str(self.settings.models_path)}
