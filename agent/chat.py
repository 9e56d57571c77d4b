"""A chat turn, from the caller's text to a logged ``Reply``: validated before anything is
written, run through the chat graph (``graphs.chat``) on the agent's model thread, one turn at a
time per thread across processes, and streamed when asked."""

from __future__ import annotations

import hashlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from filelock import FileLock
from pydantic import BaseModel

from agent.errors import InvalidInput, ReverieError
from agent.inputs import decoding, required
from agent.inputs import history as checked_history
from agent.inputs import thread_id as checked_thread_id
from memory.db import store_error
from memory.records import NewTurn, Thread

if TYPE_CHECKING:
    from agent.facade import Agent

log = logging.getLogger(__name__)


class Reply(BaseModel):
    """One answer of the assistant, as `chat` returns it and `ask --json` prints it."""

    turn_id: int  # the assistant's turn: what feedback points at
    user_turn_id: int
    thread_id: str
    user: str
    text: str
    model_version: str
    adapter: str | None = None  # the version's frozen adapter that answered (chosen by the message); None: none
    policy: str | None = None  # the user's refined policy adapter (CORY), merged into every turn; None: none
    verdicts: list[dict[str, Any]]  # from the verify step (CodeJudge, consistency); empty when nothing was checked
    memories: list[dict[str, Any]]  # what recall put into the prompt: kind, id, text, score
    latency_s: float
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop", or "length" when max_new_tokens cut the answer
    recommendation: dict[str, Any] | None = None  # the recommendation agent's answer, when the message asked for picks


class ReplyStream:
    """Iterate for text chunks as they are generated; ``reply`` is set once iteration ends.
    ``cancel`` (from any thread: a server whose client went away) stops generation at the next
    token, as closing the iteration does."""

    def __init__(self, run: Callable[[threading.Event], Generator[str, None, Reply]]) -> None:
        self.abandoned = threading.Event()
        self._run = run(self.abandoned)
        self.reply: Reply | None = None

    def __iter__(self) -> Iterator[str]:
        self.reply = yield from self._run

    def cancel(self) -> None:
        self.abandoned.set()


@dataclass
class PendingTurn:
    """A validated turn, ready to run: nothing of it is written yet but its thread."""

    graph: Any
    context: Any  # graphs.chat.ChatContext
    thread: Thread
    state_in: dict


def prepare(agent: Agent, text: str, thread_id: str | None, user: str, recall: bool | None,
            history: list[dict] | None = None, options: dict[str, Any] | None = None) -> PendingTurn:
    """Validate a turn before anything is written."""
    from graphs.prompt import check_fits

    text, user = required(text, "message"), required(user, "user")
    earlier, overrides = checked_history(history) if history else [], decoding(options)
    # A thread id never seen starts a thread under that id (LangGraph's convention); only an id
    # that belongs to another user is refused.
    thread = agent.store.find_thread(checked_thread_id(thread_id)) if thread_id is not None else None
    if thread is not None and thread.user != user:
        raise InvalidInput(f"thread {thread.id} belongs to user {thread.user!r}, not {user!r}")
    if earlier and thread is not None and agent.store.list_turns(thread_id=thread.id):
        raise InvalidInput(f"thread {thread.id} has turns already: history can only start a new thread")
    context = chat_context(agent)
    context.options = replace(context.options, **overrides)
    check_fits(context.backend.count_chat_tokens, context.system_prompt, text, context.prompt_budget)
    graph = agent.graph  # open the checkpointer before the thread exists, so its errors write nothing
    thread = thread or agent.store.create_thread(user, thread_id)
    if thread.user != user:  # another process created the same id a moment ago, for someone else
        raise InvalidInput(f"thread {thread.id} belongs to user {thread.user!r}, not {user!r}")
    state_in = {
        "messages": [*earlier, {"role": "user", "content": text}],
        "user": user,
        "recall": agent.settings.recall if recall is None else recall,
        "started_at": time.time(),
        # Per-turn keys start empty: the checkpoint still holds the previous turn's values.
        "memories": [],
        "adapter": None,
        "verdicts": [],
        "turn_ids": {},
    }
    return PendingTurn(graph, context, thread, state_in)


def run(agent: Agent, turn: PendingTurn) -> Reply:
    """Run a prepared turn on the calling thread (the model thread) and return its reply."""
    agent.sync_version()
    turn.context.library = agent.library  # the version served now, which sync_version may just have changed
    config = {"configurable": {"thread_id": turn.thread.id}}
    final: dict = {}
    with thread_lock(agent, turn.thread.id):
        try:
            settle(agent, turn.thread)
            # "values" mode runs the nodes inline, like invoke, and shows whether log ran.
            for final in turn.graph.stream(turn.state_in, config, context=turn.context, stream_mode="values",
                                           durability="exit"):
                pass
        except BaseException as exc:
            if not final.get("turn_ids"):  # the log node did not write this turn
                _keep_user_turn(agent, turn, exc)
                _unwind(agent, turn.thread, exc)
            if isinstance(exc, sqlite3.Error):
                raise store_error(exc, agent.settings.home / "checkpoints.db") from exc
            raise
    reply = final["reply"]
    return Reply(
        turn_id=final["turn_ids"]["assistant"],
        user_turn_id=final["turn_ids"]["user"],
        thread_id=turn.thread.id,
        user=turn.thread.user,
        text=reply["text"],
        model_version=reply["model_version"],
        adapter=reply.get("adapter"),
        policy=reply.get("policy"),
        verdicts=final["verdicts"],
        memories=final["memories"],
        latency_s=round(time.time() - turn.state_in["started_at"], 4),
        prompt_tokens=reply["prompt_tokens"],
        completion_tokens=reply["completion_tokens"],
        finish_reason=reply["finish_reason"],
        recommendation=reply.get("recommendation"),
    )


def stream(agent: Agent, turn: PendingTurn, on_status: Callable[[str], None] | None) -> ReplyStream:
    """The turn on the model thread, its text handed to the caller's thread as it is generated.

    If the caller stops iterating early (or is interrupted), generation stops at the next token:
    the user's message is kept in the log, the unfinished reply is not.
    """
    turn.context.on_status = on_status
    return ReplyStream(lambda abandoned: _streamed(agent, turn, abandoned))


def _streamed(agent: Agent, turn: PendingTurn, abandoned: threading.Event) -> Generator[str, None, Reply]:
    chunks: queue.Queue = queue.Queue()

    def on_text(chunk: str) -> None:
        if abandoned.is_set():
            raise _Abandoned  # unwinds generate() on the model thread
        chunks.put(chunk)

    turn.context.on_text = on_text
    done = agent.submit(run, agent, turn)
    done.add_done_callback(lambda _: chunks.put(None))
    try:
        while (chunk := chunks.get()) is not None:
            yield chunk
    except BaseException:  # the caller closed the stream, or Ctrl-C
        abandoned.set()
        raise
    return done.result()  # raises what the turn raised


LOCK_STRIPES = 64


def thread_lock(agent: Agent, thread_id: str) -> FileLock:
    """One turn at a time per thread, across processes: two turns racing on one thread would both
    extend the same checkpoint and one would vanish from the conversation. Threads share 64 lock
    files by hash, so the folder stays small however many threads there are."""
    stripe = int(hashlib.sha1(thread_id.encode()).hexdigest(), 16) % LOCK_STRIPES
    locks = agent.settings.home / "locks"
    if not (locks / ".striped").exists():
        _clear_thread_locks(locks)
    return FileLock(str(locks / f"thread-{stripe:02d}.lock"))


def _clear_thread_locks(locks) -> None:
    """Once per home: remove the one-file-per-thread locks of earlier versions (thread-<id>.lock)."""
    locks.mkdir(exist_ok=True)
    for old in locks.glob("thread-????????????.lock"):
        old.unlink(missing_ok=True)
    (locks / ".striped").touch()


def settle(agent: Agent, thread: Thread, *, force: bool = False) -> int:
    """Make the thread's checkpoint hold what the log holds, and return how many messages that is.

    The log (reverie.db) is the record; the checkpoint is the conversation's working copy. They
    disagree after a turn failed between the two writes, or when checkpoints.db was deleted:
    then the checkpoint is rebuilt from the log's exchanges (a user turn and its answer), so a
    turn is in both or in neither, and no history is silently dropped.
    """
    from graphs.chat import conversation, rewrite_conversation

    said = exchanges(agent.store.list_turns(thread_id=thread.id))
    if force or conversation(agent.graph, thread.id) != said:
        rewrite_conversation(agent.graph, thread.id, said, thread.user)
    return len(said)


def repair(agent: Agent, thread_id: str) -> int:
    """Rebuild a thread's saved conversation from the log, whatever the checkpoint holds."""
    thread = agent.store.get_thread(thread_id)
    with thread_lock(agent, thread_id):
        return settle(agent, thread, force=True)


def exchanges(turns) -> list[dict]:
    """The conversation in a thread's log: each user turn that got an answer, and the answer. A
    user turn kept after a failed turn stays in the log but is no part of the conversation."""
    messages = []
    for said, answered in zip(turns, turns[1:]):
        if said.role == "user" and answered.role == "assistant":
            messages += [{"role": "user", "content": said.content}, {"role": "assistant", "content": answered.content}]
    return messages


def _unwind(agent: Agent, thread: Thread, exc: BaseException) -> None:
    """After a turn that was not logged, take it out of the checkpoint too (best effort: if this
    fails as well, the next turn's ``settle`` does it)."""
    try:
        settle(agent, thread)
    except Exception as second:  # said already by the turn's own error, most likely
        log.debug("thread %s: the checkpoint is settled at the next turn instead (%s)", thread.id, second)


def chat_context(agent: Agent):
    """What the chat graph's nodes need, from the agent and its settings."""
    from graphs.chat import ChatContext

    s = agent.settings
    return ChatContext(
        store=agent.store,
        backend=agent.backend,
        system_prompt=s.system_prompt,
        options=generation_options(s),
        recall_k=s.recall_k,
        recall_min_score=s.recall_min_score,
        route_min_score=s.route_min_score,
        retention=agent.retention,  # one per agent: it caches what each version holds
        verifiers=_verifiers(agent.judge_modes(), s),
        recommender=recommender(agent),
        recommend_kind=s.recommend.kind,
    )


def recommender(agent: Agent):
    """What answers a request for picks in chat (``in_chat`` allows): the recommendation agent over
    the home's catalogue, found when a message asks (``[recommend] catalogue``, or the only one);
    None when there is none to choose, and the model answers as usual."""
    from agent import recommend

    s = agent.settings.recommend
    if not s.in_chat:
        return None

    def picks(messages, user, recall):
        try:
            name = recommend.catalogue_name(agent, None)
        except ReverieError:  # no catalogue, or several and none configured
            return None
        return recommend.run(agent, list(messages), name, s.in_chat, user, recall)

    return picks


def generation_options(s):
    """How replies are decoded, from the settings."""
    from agent.llm import GenerationOptions

    return GenerationOptions(max_new_tokens=s.max_new_tokens, temperature=s.temperature, top_p=s.top_p,
                             repetition_penalty=s.repetition_penalty)


def _verifiers(modes, s) -> list:
    """The checks the model's card allows (``agent.judges``): a judge set by hand below its
    threshold still runs, labelled unreliable; one the card cannot trust is not waited for."""
    from graphs.verify.nodes import ChoiceCheck, CodeCheck

    checks = []
    code, choice = modes.code_check, modes.choice_check
    if code.value != "off":
        checks.append(CodeCheck(code.value, s.verify_code_budget_s, unreliable=None if code.trusted else code.reason))
    if choice.value != "off":
        checks.append(ChoiceCheck(s.verify_max_options, unavailable=None if choice.value == "on" else choice.reason))
    return checks


def _keep_user_turn(agent: Agent, turn: PendingTurn, exc: BaseException) -> None:
    """A turn that failed before it was logged still keeps what the user said."""
    text = turn.state_in["messages"][0]["content"]
    try:
        agent.store.record_turns(NewTurn(thread_id=turn.thread.id, user=turn.thread.user, role="user", content=text))
    except ReverieError as second:  # the same store failure the turn's own error reports
        log.debug("could not keep the user's message after %r: %s", exc, second)


class _Abandoned(Exception):
    """Raised inside generation when nobody reads the stream any more."""
