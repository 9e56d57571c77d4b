"""Knowledge that accumulates: the product's nights, each adding frozen adapters, answered by routing.

    python examples/bench_nights.py                      # 20 facts over 10 nights, 2 a night, embedded model
    python examples/bench_nights.py --model PATH_OR_ID --nights 10 --per-night 2 --work DIR
    python examples/bench_nights.py --generator-model PATH_OR_ID --work DIR   # a larger question writer
    python examples/bench_nights.py --set selfparam.lr=3e-4 --work DIR         # any product setting

Through the product (``Agent.teach`` then ``Agent.learn`` each night, the data set's held-out and
near-miss questions given as probes). After every night, on all facts taught so far:
  served     each held-out question asked as a turn with recall off is: routed to the adapter
             that holds the fact it is about (``graphs.routing``), no fact text in the prompt
  in context the base model with the fact in its prompt (what recall gives): the upper bound
  ratio      served / in context (goal: >= 0.85 after night 10); routing accuracy
and night 1's facts over time (goal: >= 0.85 of their first score), nights promoted (goal: >= 9
of 10), learning seconds per fact, general ability of the served version. At the end:
  merged     design (c): every kept adapter merged into one by peft's ``add_weighted_adapter``
             (TIES), always on: what merging costs against routing
  latency    what routing adds to a turn: the adapter switch and the search (goal: <= 5%)
Design (a), one cumulative adapter, is the recorded run of the same facts and nights before this
design (``examples/results/selfparam_sequential_rehearse0.json``), shown beside it in the README.

Resumable: the home lives in ``--work`` and the JSON is rewritten after every night; run the same
command again to go on from the last finished night.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT))

from reproduce_selfparam import SYSTEM, Results, peak_mib, teacher_system  # noqa: E402

from agent import Agent  # noqa: E402
from agent.errors import InvalidInput  # noqa: E402
from agent.progress import shown  # noqa: E402
from agent.settings import flag_setting  # noqa: E402
from graphs.routing import route  # noqa: E402
from learners import evaluate as ev  # noqa: E402

USER = "bench"
OTHER = "bench-other"  # a user with no adapters: a turn of theirs searches nothing


def heldout(fact: dict) -> list[dict]:
    return [qa for qa in fact["qa"] if qa["split"] == "heldout"]


def in_context(bot: Agent, facts: list[dict]) -> list[float]:
    """Per fact: held-out "contains" of the base with the fact in its prompt."""
    questions = [(i, qa) for i, f in enumerate(facts) for qa in heldout(f)]
    answers = bot.on_model_thread(lambda: ev.ask(bot.backend, [teacher_system(facts[i]["context"]) for i, _ in questions],
                                                 [qa["q"] for _, qa in questions]))
    return per_fact(facts, questions, answers)


def served(bot: Agent, facts: list[dict], ids: list[int]) -> tuple[list[float], float]:
    """Per fact: held-out "contains" of the served version, each question routed as a turn; and the
    share of questions routed to the adapter that holds their fact."""
    questions = [(i, qa) for i, f in enumerate(facts) for qa in heldout(f)]

    def run():
        bot.sync_version()
        routes = [route(bot.store, bot.library, qa["q"], USER, bot.settings.route_min_score).adapter
                  for _, qa in questions]
        answers = [""] * len(questions)
        for adapter in set(routes):
            picked = [k for k, r in enumerate(routes) if r == adapter]
            for k, answer in zip(picked, ev.ask(bot.backend, SYSTEM, [questions[k][1]["q"] for k in picked],
                                                adapter=adapter)):
                answers[k] = answer
        return routes, answers

    routes, answers = bot.on_model_thread(run)
    holder = {e: a.name for a in bot.library for e in a.experiences}
    right = [r is not None and r == holder.get(ids[i]) for (i, _), r in zip(questions, routes)]
    return per_fact(facts, questions, answers), round(statistics.mean(right), 3)


def per_fact(facts, questions, answers) -> list[float]:
    scores = [ev.score(a, qa["a"])[0] for a, (_, qa) in zip(answers, questions)]
    return [statistics.mean(s for s, (i, _) in zip(scores, questions) if i == j) for j in range(len(facts))]


def merged(bot: Agent, facts: list[dict]) -> dict:
    """Design (c): the library's adapters merged (TIES) into one, always on."""
    from peft import PeftModel

    from agent.learn import _backend_over, _load_weights

    library = bot.versions.library(bot.active_model())  # bot.library is set only once the model is loaded
    if len(library) < 2:
        return {}

    def run():
        tokenizer, model = _load_weights(bot, bot.ensure_base())
        names = [a.name.replace(".", "_") for a in library]  # peft's names cannot hold a dot
        model = PeftModel.from_pretrained(model, library[0].path, adapter_name=names[0])
        for adapter, name in zip(library[1:], names[1:]):
            model.load_adapter(adapter.path, adapter_name=name)
        model.add_weighted_adapter(names, [1.0] * len(names), "merged", combination_type="ties", density=0.5)
        model.set_adapter("merged")
        backend = _backend_over(bot, tokenizer, model.eval(), "merged")
        questions = [(i, qa) for i, f in enumerate(facts) for qa in heldout(f)]
        answers = ev.ask(backend, SYSTEM, [qa["q"] for _, qa in questions])
        return {"per_fact": per_fact(facts, questions, answers), **ev.general_ability(backend, SYSTEM)}

    out = bot.on_model_thread(run)
    out["contains"] = round(statistics.mean(out["per_fact"]), 3)
    return out


def latency(home: Path, overrides: dict, facts: list[dict], turns: int) -> dict:
    """What routing adds to a turn with recall off: the search for the user's best experience and
    the switch to its adapter's weights, each timed inside the turns (``Store.search`` and
    ``AdapterSwitch.use`` wrapped with a clock while this runs). Turn against turn it cannot be
    read: an adapter changes the answer and its length, and on this VM the same turn varies by
    0.2 s, ten times what routing costs. The questions cycle through facts held by different
    adapters, so every routed turn switches (the worst case); the plain turns are the same
    questions from a user with no adapters (no search, no switch)."""
    from agent.llm.adapters import AdapterSwitch
    from memory.store import Store

    clocks: dict[str, list[float]] = {"search": [], "switch": []}

    def clocked(method, name: str):
        def run(*args, **kwargs):
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                clocks[name].append(time.perf_counter() - started)
        return run

    search, use = Store.search, AdapterSwitch.use
    times: dict[str, list[float]] = {"routed": [], "plain": []}
    try:
        with Agent.open(home, **overrides) as bot:
            by_adapter = {}
            for fact in facts:  # one question per adapter that answers one
                question = heldout(fact)[0]["q"]
                by_adapter.setdefault(bot.chat(question, user=USER, recall=False).adapter, question)
            bot.chat("Hello.", user=OTHER, recall=False)
            questions = [q for adapter, q in by_adapter.items() if adapter is not None]
            Store.search, AdapterSwitch.use = clocked(search, "search"), clocked(use, "switch")
            for i in range(turns if len(questions) > 1 else 0):
                question = questions[i % len(questions)]
                times["routed"].append(bot.chat(question, user=USER, recall=False).latency_s)
                times["plain"].append(bot.chat(question, user=OTHER, recall=False).latency_s)
    finally:
        Store.search, AdapterSwitch.use = search, use
    if not times["routed"]:
        return {"turns": turns, "error": "fewer than two adapters answer the facts: no switch to time"}
    median = {k: round(statistics.median(v), 4) for k, v in (times | clocks).items()}
    return {"turns": turns, "adapters": len(questions), "routed_turn_s": median["routed"],
            "plain_turn_s": median["plain"], "search_s": median["search"], "switch_s": median["switch"],
            "overhead": round((median["search"] + median["switch"]) / median["plain"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--models-dir", type=Path, help="converted base models (default: HOME/models)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "facts" / "facts_dev.jsonl")
    parser.add_argument("--nights", type=int, default=10)
    parser.add_argument("--per-night", type=int, default=2)
    parser.add_argument("--generator-model", help="the model that writes the QA pairs (the product's "
                        "generator_model), e.g. a larger local folder; default: the model itself")
    parser.add_argument("--adapter-size", type=int, help="experiences per adapter (default: the product's)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="any product setting, as the CLI's --set takes it (e.g. selfparam.lr=3e-4)")
    parser.add_argument("--turns", type=int, default=20, help="chat turns per condition in the latency check")
    parser.add_argument("--work", type=Path, default=ROOT / ".bench" / "nights", help="the home, kept for resuming")
    parser.add_argument("--json", type=Path, default=ROOT / "examples" / "results" / "nights.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "examples" / "results" / "nights.png")
    args = parser.parse_args()
    console = Console()
    facts = [json.loads(line) for line in args.data.read_text().splitlines()][: args.nights * args.per_night]
    overrides = {"model": args.model, "learn": {"extract_turns": False, "max_new": args.per_night * 4}}
    if args.models_dir:
        overrides["models_dir"] = args.models_dir
    if args.adapter_size:
        overrides["learn"]["adapter_size"] = args.adapter_size
    if args.generator_model:
        overrides["generator_model"] = args.generator_model
    for item in args.settings:
        try:
            key, value = flag_setting(item)
        except InvalidInput as exc:
            parser.error(str(exc))
        overrides[key] = value
    results = Results(parser, args, resume=args.work.is_dir())
    nights = results.setdefault("nights", [])
    save = results.save

    with Agent.open(args.work, **overrides) as bot, shown(console) as progress:
        known = {e.text: e.id for e in bot.memories(user=USER)}
        ids: list[int] = []
        for fact in facts[: len(nights) * args.per_night]:
            ids.append(known[fact["context"]])
        if "in_context" not in results:
            results["in_context"] = in_context(bot, facts)
            save()
        tick = progress.phase("nights", args.nights - len(nights))
        for night in range(len(nights), args.nights):
            batch = facts[night * args.per_night : (night + 1) * args.per_night]
            for fact in batch:  # a night stopped after teaching: the same facts are not taught twice
                if fact["context"] not in known:
                    probes = [{"question": qa["q"], "answers": qa["a"], "kind": "recall"} for qa in heldout(fact)]
                    probes.append({"question": fact["near_miss"]["q"], "answers": ["unknown"], "kind": "near_miss"})
                    known[fact["context"]] = bot.teach(fact["context"], user=USER, probes=probes)
                ids.append(known[fact["context"]])
            started = time.perf_counter()
            report = bot.learn(user=USER, progress=progress)
            so_far = facts[: len(ids)]
            scores, routing = served(bot, so_far, ids)
            context = results["in_context"][: len(ids)]
            nights.append({
                "night": night + 1, "seconds": round(time.perf_counter() - started, 1), "new": report.new,
                "promoted": report.promoted, "kept": report.kept, "reasons": report.reasons,
                "retrained": report.retrained,
                "learn_s": report.training["seconds"] if report.training else None,
                "general": (report.figures or {}).get("general_contains"), "served": scores,
                "served_mean": round(statistics.mean(scores), 3), "in_context_mean": round(statistics.mean(context), 3),
                "ratio": round(statistics.mean(scores) / max(1e-9, statistics.mean(context)), 3),
                "routing_accuracy": routing, "library": [a.name for a in bot.library],
            })
            save()
            progress.note(f"night {night + 1}: served {nights[-1]['served_mean']:.2f}, in context "
                          f"{nights[-1]['in_context_mean']:.2f}, {'promoted' if report.promoted else 'refused'}")
            tick(1)
        if "merged" not in results:
            results["merged"] = merged(bot, facts)
            save()
    if "latency" not in results:
        results["latency"] = latency(args.work, overrides, facts, args.turns)
    first = nights[0]["served"][: args.per_night] if nights else []
    results["first_night"] = [round(statistics.mean(n["served"][: args.per_night]), 3) for n in nights]
    results["summary"] = {
        "served_after_last": nights[-1]["served_mean"], "in_context": nights[-1]["in_context_mean"],
        "ratio_after_last": nights[-1]["ratio"],
        "first_night_kept": round(results["first_night"][-1] / max(1e-9, statistics.mean(first)), 3) if first else None,
        "promoted": sum(n["promoted"] for n in nights), "nights": len(nights),
        "learn_s_per_fact": round(sum(n["learn_s"] or 0 for n in nights) / len(facts), 1),
        "wall_s_per_fact": round(sum(n["seconds"] for n in nights) / len(facts), 1), "peak_mib": round(peak_mib()),
    }
    save()
    plot(results, args.plot)
    console.print_json(data={k: results[k] for k in ("summary", "first_night", "latency")}
                       | {"merged": {k: v for k, v in results.get("merged", {}).items() if k != "per_fact"}})
    console.print(f"wrote {args.json} and {args.plot}")


def plot(results: dict, path: Path) -> None:
    from agent.plots import _pyplot

    plt = _pyplot()
    nights = results["nights"]
    x = [n["night"] for n in nights]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(x, [n["served_mean"] for n in nights], "o-", label="all facts so far: served weights (routed)")
    ax.plot(x, [n["in_context_mean"] for n in nights], "s--", label="all facts so far: in context")
    ax.plot(x, results["first_night"], "^-", label="night 1's facts: served weights")
    for n in nights:
        if not n["promoted"]:
            ax.axvline(n["night"], color="#ccc", lw=0.8, zorder=0)
    ax.set_xlabel("night (grey line: refused)")
    ax.set_ylabel('held-out "contains", recall off')
    ax.set_ylim(0, 1)
    ax.set_title(f"{results['args']['model']}: {results['args']['per_night']} facts a night, frozen adapters, routed")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
