"""The recommendation pipeline: k items of a catalogue for a conversation, each with a reason.

    START -> wants -> candidates -> filter -> rank -> explain -> END

  wants       the hard constraints and the titles mentioned or liked (``graphs.wants``), and the
              user's tastes read the same way as soft preferences: recalled (short-term memories),
              and, when a night consolidated them, read from the weights by likelihood
              (``graphs.taste``): the genres and tags that the user's adapters make stand out as
              the answer to "What kind of films do I like?", the prompt carrying no memory
  candidates  from each source, best first: ``retrieval`` (the conversation and recalled tastes
              against the catalogue's index), ``similar`` (neighbours of the items the user
              liked), ``related`` (the items the catalogue lists as related to those mentioned,
              liked first: an item's ``related`` field, e.g. "people who liked it also liked"), ``model`` (the titles the model names when asked for recommendations,
              matched to the catalogue: He et al.'s zero-shot protocol), ``popular`` (by the
              items' popularity field, when they carry one), and ``satisfying`` (the items that
              meet every constraint, when there are constraints)
  filter      every candidate that breaks a hard constraint or was mentioned already is dropped:
              a constraint is never violated, and fewer than k come back when fewer qualify
  rank        reciprocal-rank fusion of the sources (k = 60, each source weighted), plus a nudge for each wanted tag
              and each recalled taste an item matches; then, when the comparator may be trusted
              (the model's card, or set by hand), the top ``rerank`` by merge sort on the
              calibrated comparator, both orders of every pair, its consistency figures kept
  explain     a reason for each pick from its evidence: the constraints it meets, the liked item
              it resembles, the sources that proposed it

Each stage but the last (which only formats) records its seconds, so every stage is measured
on its own. Nodes return only the keys they changed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel

from agent.llm.protocol import AdapterChoice, Backend, GenerationOptions
from graphs import taste
from graphs.wants import Vocabulary, Wants, rating, read, runtime, values, violations, year
from memory.catalogue import CatalogueIndex, Catalogues
from memory.records import CatalogueItem

RRF_K = 60
QUERY_CHARS = 600  # about the 256 tokens MiniLM reads
NUDGE = 0.004  # per matched wanted tag or taste: about moving up a few places in one source
SOURCES = ("retrieval", "similar", "related", "model", "popular", "satisfying")
MODEL_PROMPT = ("Pretend you are a {kind} recommender system. I will give you a conversation between a user and "
                "you (a recommender system). Based on the conversation, you reply me with {n} recommendations "
                "without extra sentences.\n\nHere is the conversation:\n{conversation}")


ASKS = re.compile(r"\b(recommend|recommendations?)\b|\bwhat (?:should|could|can) (?:i|we) (?:watch|read|see|play|"
                  r"listen to)\b", re.I)
ASKS_LOOSELY = re.compile(r"\b(suggest|suggestions?|ideas|picks|something|anything)\b", re.I)


def asks_for_picks(text: str, kind: str = "film") -> bool:
    """Whether a chat message asks for recommendations: "recommend" said, or "suggest" (or
    "something", "ideas") with the kind of item or a way to enjoy it named ("suggest a film",
    "something to watch"). "Can you suggest a name for my cat?" is not a request for films."""
    if ASKS.search(text):
        return True
    named = re.search(rf"\b({re.escape(kind)}s?|movies?|to (?:watch|read|see|play))\b", text, re.I)
    opening = re.match(r"\s*(suggest|give|any|some)\b", text, re.I)  # "Any good movies?", "Suggest a film"
    return bool(named and (ASKS_LOOSELY.search(text) or opening) and ("?" in text or opening))


class Pick(BaseModel):
    id: str
    title: str
    reason: str
    score: float
    sources: list[str]
    fields: dict[str, Any] = {}


class Recommendation(BaseModel):
    """What ``Agent.recommend`` returns (and ``--json`` prints)."""

    catalogue: str
    items: list[Pick]
    constraints: dict[str, Any]  # the hard constraints read from the conversation
    mentioned: list[dict[str, str]]  # items already mentioned: {"id", "title"}, never recommended
    liked: list[str]  # ids of mentioned items the user spoke well of
    tastes: list[str] = []  # recalled experiences that steered the candidates
    adapter: str | list[str] | None = None  # the user's adapters the model source answered with
    tastes_from_weights: list[dict[str, Any]] = []  # consolidated tastes read from the user's adapters:
    # {"field": "genres" | "tags", "value", "z": how far its likelihood ratio stands out}
    qualifying: int  # candidates left after the hard constraints
    note: str | None = None  # e.g. fewer than k qualify
    ranking: dict[str, Any]  # {"method": "comparator" | "score", "reason", and the comparator's figures}
    seconds: dict[str, float]  # per stage


def as_text(result: Recommendation) -> str:
    """A recommendation as a chat reply: the picks with their reasons, and what limited them."""
    if not result.items:
        return (f"Nothing in the {result.catalogue} catalogue meets everything you asked"
                f"{' (' + result.note + ')' if result.note else ''}. Could you relax one of your conditions?")
    lines = [f"From the {result.catalogue} catalogue:"]
    lines += [f"{n}. {pick.title}: {pick.reason}" for n, pick in enumerate(result.items, 1)]
    if result.note:
        lines.append(f"({result.note[0].upper() + result.note[1:]}.)")
    return "\n".join(lines)


@dataclass
class View:
    """One catalogue loaded for recommending: its items in index order, vocabulary and popularity."""

    name: str
    created_at: str
    items: list[CatalogueItem]
    vocab: Vocabulary
    position: dict[str, int]
    popular: list[int]  # positions, most popular first (empty when items carry no such field)
    related: dict[int, list[int]] = field(default_factory=dict)  # position -> its ``related`` field's, in order

    @classmethod
    def load(cls, catalogues: Catalogues, name: str, popularity_field: str = "popularity") -> View:
        catalogue = catalogues.get(name)
        items = catalogues.items(name)
        scored = [(p, float(v)) for p, item in enumerate(items)
                  if isinstance(v := item.fields.get(popularity_field), (int, float)) and not isinstance(v, bool)]
        position = {item.id: p for p, item in enumerate(items)}
        related = {p: [position[str(i)] for i in listed if str(i) in position]
                   for p, item in enumerate(items) if isinstance(listed := item.fields.get("related"), list)}
        return cls(name=name, created_at=catalogue.created_at, items=items, vocab=Vocabulary.of(items),
                   position=position, popular=[p for p, _ in sorted(scored, key=lambda x: -x[1])],
                   related={p: r for p, r in related.items() if r})


@dataclass
class RecContext:
    view: View
    index: CatalogueIndex
    backend: Backend | None = None  # needed for the model source and comparator ranking
    adapter: str | tuple[str, ...] | None = None  # the user's adapters the model source answers with
    # The user's adapters that may hold their consolidated tastes (each merged with their policy, if
    # any), and what each is compared with: the same weights without it.
    taste_adapters: Sequence[AdapterChoice] = ()
    taste_without: AdapterChoice = None
    # The tastes read from the weights, by ``taste.key``: they change only with the adapters or the
    # catalogue, so a night reads them once (memory.tastes keeps them) and requests find them.
    remembered: MutableMapping[str, list] = field(default_factory=dict)
    k: int = 10
    per_source: int = 50
    sources: Sequence[str] = SOURCES
    weights: dict[str, float] = field(default_factory=dict)  # per source in the fusion; 1 when not named
    kind: str = "film"
    rank: str = "score"  # or "comparator"
    rank_reason: str = ""
    rerank: int = 5
    # False: items mentioned in the conversation may come back (ReDial's protocol excludes only its
    # own list of seen items, and its gold answers often re-name one the user mentioned)
    exclude_mentioned: bool = True
    on_status: Callable[[str], None] | None = None
    seconds: dict[str, float] = field(default_factory=dict)


class RecState(TypedDict, total=False):
    messages: list[dict]
    tastes: list[str]
    wants: Wants
    soft: Wants  # what the recalled tastes ask for: it nudges, never filters
    tastes_from_weights: list[dict[str, Any]]  # graphs.taste: read from the user's adapters
    found: dict[str, list[int]]  # source -> positions, best first
    qualifying: list[int]
    order: list[int]
    scores: dict[int, float]
    ranking: dict
    result: Recommendation


def _timed(name: str):
    def wrap(node):
        def run(state: RecState, runtime: Runtime[RecContext]):
            start = time.perf_counter()
            out = node(state, runtime.context)
            runtime.context.seconds[name] = round(time.perf_counter() - start, 4)
            return out

        return run

    return wrap


@_timed("wants")
def wants(state: RecState, ctx: RecContext) -> dict:
    vocab = ctx.view.vocab
    soft = read([{"role": "user", "content": t} for t in state.get("tastes", [])], vocab)
    held = []
    if ctx.backend is not None and ctx.taste_adapters:
        held = taste.read(ctx.backend, ctx.view.items, ctx.kind, ctx.taste_adapters, ctx.taste_without,
                          ctx.view.name, ctx.view.created_at, ctx.remembered)
    for found in held:  # a nudge and part of the retrieval query, like a recalled taste; never a filter
        wanted = soft.genres_all if found["field"] == "genres" else soft.tags_any
        wanted += [found["value"]] if found["value"] not in wanted else []
    return {"wants": read(state["messages"], vocab), "soft": soft, "tastes_from_weights": held}


@_timed("candidates")
def candidates(state: RecState, ctx: RecContext) -> dict:
    view, want, n = ctx.view, state["wants"], ctx.per_source
    found: dict[str, list[int]] = {}
    if "retrieval" in ctx.sources:
        # Everything the user said, the latest last (the titles they mentioned early on are signal too),
        # cut to what the embedding model reads, then their recalled tastes.
        said = " ".join(m["content"] for m in state["messages"] if m.get("role") == "user")[-QUERY_CHARS:]
        held = [taste.answer(t["field"], t["value"], ctx.kind) for t in state.get("tastes_from_weights", [])]
        query = " ".join([said, *state.get("tastes", []), *held])
        found["retrieval"] = [p for p, _ in ctx.index.nearest(ctx.index.embed([query]), n)[0]]
    liked = [view.position[i] for i in want.liked + state["soft"].liked if i in view.position]
    if "similar" in ctx.sources and liked:
        vectors = ctx.index.vectors(liked)
        near = ctx.index.nearest([vectors[p] for p in liked if p in vectors], n + 1)
        found["similar"] = _interleave([[p for p, _ in row if p not in liked] for row in near])[:n]
    if "related" in ctx.sources and view.related:
        found["related"] = related_to(anchors(want, state["soft"], view), view)[:n]
    if "model" in ctx.sources and ctx.backend is not None:
        found["model"] = model_names(ctx.backend, state["messages"], view, ctx.kind, min(n, 20), ctx.adapter)
    if "popular" in ctx.sources and view.popular:
        found["popular"] = view.popular[: n * 4]  # deeper: most of the popular ones were seen or are filtered
    if "satisfying" in ctx.sources and want.constraints():
        order = view.popular or range(len(view.items))
        found["satisfying"] = [p for p in order if not violations(view.items[p], want)][: n * 4]
    return {"found": found}


@_timed("filter")
def filter_(state: RecState, ctx: RecContext) -> dict:
    want = state["wants"] if ctx.exclude_mentioned else state["wants"].model_copy(update={"seen": []})
    seen: set[int] = set()
    qualifying = []
    for source in SOURCES:
        for p in state["found"].get(source, []):
            if p not in seen:
                seen.add(p)
                if not violations(ctx.view.items[p], want):
                    qualifying.append(p)
    return {"qualifying": qualifying}


@_timed("rank")
def rank(state: RecState, ctx: RecContext) -> dict:
    scores = fuse(state["found"], state["qualifying"], ctx.view, state["wants"], state["soft"], ctx.weights)
    order = sorted(state["qualifying"], key=lambda p: -scores[p])[: ctx.k]
    ranking: dict[str, Any] = {"method": "score", "reason": ctx.rank_reason}
    top = order[: ctx.rerank]
    shown = [describe(ctx.view.items[p]) for p in top]
    if ctx.rank == "comparator" and ctx.backend is not None and len(top) >= 3 and len(set(shown)) == len(shown):
        from graphs.verify.consistency import rank as by_comparator

        if ctx.on_status is not None:
            ctx.on_status(f"ranking the top {len(top)} with the comparator")
        ranked = by_comparator(ctx.backend, instruction(state["messages"], ctx.kind), shown)
        order = [top[i] for i in ranked.order] + order[len(top):]
        ranking = {"method": "comparator", "reason": ctx.rank_reason, "reranked": len(top),
                   "comparisons": ranked.comparisons, "confidence": ranked.confidence, "raw": ranked.raw,
                   "calibrated": ranked.calibrated}
    elif ctx.rank == "comparator":
        ranking["reason"] += "; not run here: fewer than 3 candidates, or two that read the same"
    return {"order": order, "scores": scores, "ranking": ranking}


def explain(state: RecState, runtime: Runtime[RecContext]) -> dict:
    ctx = runtime.context
    view, want = ctx.view, state["wants"]
    in_source = {s: set(ps) for s, ps in state["found"].items()}
    picks = [Pick(id=view.items[p].id, title=view.items[p].title, reason=reason(view.items[p], want, state["soft"],
                  [s for s in SOURCES if p in in_source.get(s, ())], view),
                  score=round(state["scores"][p], 5), sources=[s for s in SOURCES if p in in_source.get(s, ())],
                  fields=view.items[p].fields) for p in state["order"]]
    note = None
    if len(picks) < ctx.k:
        n = len(state["qualifying"]) if want.constraints() else len(picks)
        note = (f"only {n} item{'s' if n != 1 else ''} of the catalogue meet{'' if n != 1 else 's'} everything asked"
                if want.constraints() else f"only {n} candidate{'s' if n != 1 else ''} found")
    result = Recommendation(
        catalogue=view.name, items=picks, constraints=want.constraints(),
        mentioned=[{"id": i, "title": view.items[view.position[i]].title} for i in want.seen],
        liked=want.liked, tastes=state.get("tastes", []),
        adapter=list(ctx.adapter) if isinstance(ctx.adapter, tuple) else ctx.adapter,
        tastes_from_weights=state.get("tastes_from_weights", []), qualifying=len(state["qualifying"]), note=note,
        ranking=state["ranking"], seconds=dict(ctx.seconds))
    return {"result": result}


def build_recommend_graph():
    graph = StateGraph(RecState, context_schema=RecContext)
    for name, node in (("wants", wants), ("candidates", candidates), ("filter", filter_), ("rank", rank),
                       ("explain", explain)):
        graph.add_node(name, node)
    graph.add_edge(START, "wants")
    graph.add_edge("wants", "candidates")
    graph.add_edge("candidates", "filter")
    graph.add_edge("filter", "rank")
    graph.add_edge("rank", "explain")
    graph.add_edge("explain", END)
    return graph.compile()


# -- the parts -----------------------------------------------------------------------------


def fuse(found: dict[str, list[int]], qualifying: Sequence[int], view: View, want: Wants, soft: Wants,
         weights: dict[str, float] | None = None) -> dict[int, float]:
    """Weighted reciprocal-rank fusion over the sources, nudged by the wanted tags and tastes an item matches."""
    scores = dict.fromkeys(qualifying, 0.0)
    for source, ranked in found.items():
        weight = (weights or {}).get(source, 1.0)
        for rank_, p in enumerate(ranked):
            if p in scores:
                scores[p] += weight / (RRF_K + rank_ + 1)
    wished = set(want.tags_any) | set(soft.genres_all) | set(soft.tags_any)
    unwished = set(soft.genres_none) | set(soft.tags_none)
    for p in scores:
        item = view.items[p]
        traits = set(values(item, "genres")) | set(values(item, "tags"))
        scores[p] += NUDGE * (len(traits & wished) - len(traits & unwished))
    return scores


def model_names(backend: Backend, messages: Sequence[dict], view: View, kind: str, n: int,
                adapter: str | tuple[str, ...] | None = None) -> list[int]:
    """Positions of the titles the model names for the conversation, in its order (with ``adapter``
    merged: the user's consolidated tastes)."""
    conversation = "\n".join(f"{'User' if m.get('role') == 'user' else 'Recommender'}: {m['content']}"
                             for m in messages)
    # Prefilled with "1.": unprompted, the 135M model answers the request in prose about half the time.
    reply = backend.generate([{"role": "user", "content": MODEL_PROMPT.format(kind=kind, n=n, conversation=conversation)}],
                             GenerationOptions(max_new_tokens=12 * n, temperature=0.0, repetition_penalty=1.1,
                                               adapter=adapter), prefill="1.")
    named: list[int] = []
    for line in reply.text.splitlines():
        for item_id in view.vocab.titles.match_line(line):
            p = view.position[item_id]
            if p not in named:
                named.append(p)
    return named


def instruction(messages: Sequence[dict], kind: str) -> str:
    said = " ".join(m["content"] for m in messages if m.get("role") == "user")[-600:]
    return f"Which {kind} should be recommended to a user who said: \"{said}\"?"


def describe(item: CatalogueItem) -> str:
    """An item as the comparator reads it: the title, its year and genres, its description."""
    facts = [str(y) for y in [year(item)] if y] + values(item, "genres")
    text = item.title + (f" ({', '.join(facts)})" if facts else "")
    description = item.fields.get("description")
    return text + (f": {description}" if isinstance(description, str) and description else "")


def reason(item: CatalogueItem, want: Wants, soft: Wants, sources: list[str], view: View) -> str:
    """One line from the evidence: what it matches, what it resembles, who proposed it."""
    parts = []
    genres, tags = values(item, "genres"), values(item, "tags")
    matched = [g for g in want.genres_all if g in genres] + [t for t in want.tags_any if t in tags + genres]
    if matched:
        parts.append(" and ".join(matched))
    y, minutes, r = year(item), runtime(item), rating(item)
    if want.year_min is not None or want.year_max is not None:
        parts.append(f"from {y}")
    if want.runtime_lt is not None or want.runtime_gt is not None:
        parts.append(f"{minutes} min")
    if want.rating_in or want.rating_not:
        parts.append(f"rated {r}")
    if want.language_in or want.language_not:
        parts.append(f"in {', '.join(values(item, 'language'))}")
    tastes = [x for x in soft.genres_all + soft.tags_any if x in genres + tags]
    if tastes:
        parts.append(f"you like {' and '.join(tastes)}")
    if "similar" in sources and want.liked:
        parts.append("like " + view.items[view.position[want.liked[0]]].title)
    if "related" in sources:
        p = view.position[item.id]
        anchor = next((a for a in anchors(want, soft, view) if p in view.related.get(a, ())), None)
        if anchor is not None:
            parts.append("often liked with " + view.items[anchor].title)
    if "model" in sources:
        parts.append("the model suggests it")
    if not parts and "popular" in sources:
        parts.append("popular")
    if not parts:
        parts.append("close to what you described")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def anchors(want: Wants, soft: Wants, view: View) -> list[int]:
    """The positions of the items the user liked, then of the others they mentioned."""
    ids = want.liked + soft.liked + want.seen
    return list(dict.fromkeys(view.position[i] for i in ids if i in view.position))


def related_to(anchors: Sequence[int], view: View) -> list[int]:
    """The items listed as related to the anchors, by votes: 1 / (1 + rank) from each anchor's
    list, so an item related to several mentioned ones comes first; the anchors themselves never."""
    votes: dict[int, float] = {}
    for a in anchors:
        for rank_, p in enumerate(view.related.get(a, ())):
            votes[p] = votes.get(p, 0.0) + 1.0 / (1 + rank_)
    return [p for p in sorted(votes, key=lambda p: -votes[p]) if p not in anchors]


def _interleave(rows: list[list[int]]) -> list[int]:
    """Round-robin over several ranked lists, each position once."""
    out: list[int] = []
    for rank_ in range(max((len(r) for r in rows), default=0)):
        for row in rows:
            if rank_ < len(row) and row[rank_] not in out:
                out.append(row[rank_])
    return out
