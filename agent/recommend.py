"""Recommending: catalogues imported into a home, and ``Agent.recommend`` over one of them.

A recommendation reads a conversation (given, or a logged thread), recalls the user's own
short-term memories and earlier statements as tastes (never another user's: recall filters on
the user), and runs the pipeline of ``graphs.recommend``. Tastes that a night consolidated are
not recalled: they are read from the user's adapters by likelihood (``graphs.taste``), at the end
of the night that made them and kept (``memory.tastes``), so with recall off the weights are what
can steer the picks, and a request does not pay the reading.

The comparator ranks only where the model's card trusts it (``[recommend] rank = "auto"``), or
where the settings insist; the answer always says which ranking was used and why.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import InvalidInput, NotFound
from agent.inputs import history, required
from learners.training import NullProgress, Progress
from memory.catalogue import Catalogue, name_from, read_items

if TYPE_CHECKING:
    from agent.facade import Agent
    from graphs.recommend import Recommendation, View

_VIEWS: OrderedDict[tuple[str, str, str], View] = OrderedDict()  # (home, name, created_at): a few loaded catalogues
_KEEP_VIEWS = 4
TASTE_EXPERIENCES = 3  # the user's experiences closest to the taste question whose adapters are read
TASTE_ADAPTERS = 2


def import_catalogue(agent: Agent, path: str | Path, name: str | None, replace: bool,
                     progress: Progress | None) -> Catalogue:
    """Import a JSONL catalogue (all or nothing); its index is embedded on the model thread."""
    path = Path(path).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from exc
    name = name or name_from(path)
    items = read_items(data, path.name)
    advance = (progress or NullProgress()).phase(f"indexing {len(items)} items of {name}", len(items))
    return agent.on_model_thread(agent.catalogues.add, name, items, str(path), replace=replace, on_batch=advance)


def catalogue_name(agent: Agent, name: str | None) -> str:
    """The catalogue asked for, else the configured one, else the only one there is."""
    name = name or agent.settings.recommend.catalogue
    if name:
        return agent.catalogues.get(name).name
    names = [c.name for c in agent.catalogues.list()]
    if len(names) != 1:
        raise InvalidInput("no catalogue yet: `reverie catalogue import FILE.jsonl`" if not names else
                           f"several catalogues ({', '.join(names)}): name one (--catalogue, or [recommend] catalogue)")
    return names[0]


def view(agent: Agent, name: str) -> View:
    from graphs.recommend import View

    catalogue = agent.catalogues.get(name)
    key = (str(agent.settings.home), name, catalogue.created_at)
    if key not in _VIEWS:
        _VIEWS[key] = View.load(agent.catalogues, name, agent.settings.recommend.popularity_field)
        while len(_VIEWS) > _KEEP_VIEWS:
            _VIEWS.popitem(last=False)
    _VIEWS.move_to_end(key)
    return _VIEWS[key]


def conversation(agent: Agent, messages: list[dict] | None, thread_id: str | None, user: str) -> list[dict[str, str]]:
    """The messages to recommend for: given, or a thread's logged turns (the user's own only)."""
    if (messages is None) == (thread_id is None):
        raise InvalidInput("recommend needs a conversation or a thread id, not both")
    if thread_id is not None:
        if agent.store.get_thread(thread_id).user != user:  # another user's: as if it did not exist
            raise NotFound(f"no thread {thread_id!r} of user {user!r}")
        messages = [{"role": t.role, "content": t.content} for t in agent.store.list_turns(thread_id=thread_id)]
    messages = history(messages)
    if not any(m["role"] == "user" and m["content"].strip() for m in messages):
        raise InvalidInput("the conversation has no user message to recommend for")
    return messages


def recommend(agent: Agent, messages: list[dict] | None, thread_id: str | None, catalogue: str | None, k: int | None,
              user: str, recall: bool | None, on_status=None) -> Recommendation:
    user = required(user, "user")
    messages = conversation(agent, messages, thread_id, user)
    s = agent.settings.recommend
    k = s.k if k is None else k
    if not 1 <= k <= 100:
        raise InvalidInput("k must be between 1 and 100")
    name = catalogue_name(agent, catalogue)
    return agent.on_model_thread(run, agent, messages, name, k, user,
                                 agent.settings.recall if recall is None else recall, on_status)


def run(agent: Agent, messages: list[dict], name: str, k: int, user: str, recall: bool, on_status=None) -> Recommendation:
    """Recommend on the model thread, for a conversation already checked."""
    from graphs.recommend import RecContext, build_recommend_graph
    from memory.tastes import TastesRead

    s = agent.settings.recommend
    agent.sync_version()  # the version served now: a night may have promoted one since the last call
    method, reason = ranking(agent)
    knows_user = any(a.user == user and a.kind == "knowledge" for a in agent.versions.library(agent.active_model()))
    tastes = _tastes(agent, messages, user) if recall else []
    backend = agent.backend if "model" in s.sources or method == "comparator" or knows_user else None
    said = " ".join(m["content"] for m in messages if m["role"] == "user")
    taste_adapters, without = _taste_adapters(agent, user) if knows_user else ((), None)
    ctx = RecContext(view=view(agent, name), index=agent.catalogues.index(name), backend=backend,
                     adapter=_adapters(agent, said, user) if backend is not None else None,
                     taste_adapters=taste_adapters, taste_without=without, k=k,
                     per_source=s.per_source, sources=s.sources, weights=dict(s.weights), kind=s.kind, rank=method,
                     rank_reason=reason, rerank=s.rerank, on_status=on_status,
                     remembered=TastesRead(agent.store, user))
    state: dict[str, Any] = build_recommend_graph().invoke({"messages": messages, "tastes": tastes}, context=ctx)
    return state["result"]


def remember_tastes(agent: Agent, user: str, progress: Progress | None = None) -> dict[str, list[dict]]:
    """After a night promoted: the user's tastes read from the adapters now served, for every
    catalogue, and kept, so that the next recommendation finds them (on the model thread)."""
    from graphs import taste
    from memory.tastes import TastesRead

    names = [c.name for c in agent.catalogues.list()]
    if not names or not any(a.user == user and a.kind == "knowledge" for a in agent.library):
        return {}
    adapters, without = _taste_adapters(agent, user)
    advance = (progress or NullProgress()).phase(f"reading {user}'s tastes from the new weights", len(names))
    read = {}
    for name in names:
        catalogue = view(agent, name)
        read[name] = taste.read(agent.backend, catalogue.items, agent.settings.recommend.kind, adapters, without,
                                catalogue.name, catalogue.created_at, TastesRead(agent.store, user))
        advance()
    return read


def ranking(agent: Agent) -> tuple[str, str]:
    """How picks are ordered, and why: the comparator when set so or trusted by the card."""
    setting = agent.settings.recommend.rank
    if setting != "auto":
        return setting, f"[recommend] rank = {setting}"
    choice = agent.judge_modes().choice_check
    if choice.trusted:
        return "comparator", f"the card trusts the comparator: {choice.reason}"
    return "score", f"fused retrieval scores; the comparator is not used: {choice.reason}"


def _adapters(agent: Agent, text: str, user: str) -> str | tuple[str, ...] | None:
    """The user's adapters a turn saying ``text`` would be answered with: knowledge and policy."""
    from graphs.routing import answering, route

    chosen = route(agent.store, agent.library, text, user, agent.settings.route_min_score).adapter
    return answering(agent.library, user, chosen) or None


def _taste_adapters(agent: Agent, user: str) -> tuple[tuple[tuple[str, ...], ...], tuple[str, ...] | None]:
    """The user's adapters holding their experiences closest to the taste question (however close: a
    taste that reads far from it, "I love anything set in space", is still read; an adapter that
    holds no taste lifts no value above the others), each merged with their policy, and the
    weights they are compared with: the policy alone, or the plain weights."""
    from graphs.routing import LIVE, answering
    from graphs.taste import QUESTION

    question = QUESTION.format(kind=agent.settings.recommend.kind)
    hits = agent.store.search(question, user=user, k=TASTE_EXPERIENCES, kinds=("experience",), statuses=LIVE)
    names = [a.name for h in hits for a in agent.library if a.user == user and a.kind == "knowledge"
             and h.id in a.experiences]
    chosen = tuple(answering(agent.library, user, name) for name in dict.fromkeys(names))[:TASTE_ADAPTERS]
    return chosen, answering(agent.library, user, None) or None


def _tastes(agent: Agent, messages: list[dict], user: str) -> list[str]:
    """What the user told us they like, from their short-term memories and from what they said in
    earlier chats (a statement becomes an experience only at night): those closest to the taste
    question ("What should I watch tonight?" is far from "I adore films about dogs"; "What kind of
    films do I like?" is close), then those closest to what they say now."""
    from graphs.extraction import is_informative
    from graphs.taste import QUESTION

    s = agent.settings
    said = " ".join(m["content"] for m in messages if m["role"] == "user")
    found: dict[str, float] = {}
    for query in (QUESTION.format(kind=s.recommend.kind), said):
        for hit in agent.store.search(query, user=user, k=s.recall_k, kinds=("experience", "turn"),
                                      statuses=None, min_score=s.recall_min_score):
            live = hit.kind == "turn" or agent.store.get_experience(hit.id).status == "short_term"
            if live and hit.text not in said and (hit.kind == "experience" or is_informative(hit.text)):
                found[hit.text] = max(found.get(hit.text, -1.0), hit.score)
    return sorted(found, key=lambda text: -found[text])[: s.recall_k]
