"""Which replay set keeps an adapter off what it was not taught: open requests only (the product's
replay until 2026-12-03), or open requests mixed with short factual questions (its replay since).

    python examples/replay_sets.py --groups 0,1 2,3 4,5 6,7 --facts 8     # embedded model
    python examples/replay_sets.py --model PATH --models-dir DIR --pairs FILE --groups 2,3 4,5
    python examples/replay_sets.py --model PATH --from-home HOME --facts 20 --groups 15,16 # a night's own pairs

Each group of facts is trained into a fresh adapter (SELF-PARAM, the product's recipe: a group's
QA pairs plus ``--replay-ratio`` replay sentences a pair, at least 8), once per replay set, from
the same written pairs (``--pairs`` keeps them between runs; ``--from-home`` takes the pairs a
product home's nights wrote and stored instead, so a night's refused candidate can be trained
again exactly as it was, then with another replay). Scored as ``reproduce_selfparam.py`` scores:
held-out and unseen "contains", near-miss pollution, general questions and chat perplexity, with
the general questions each adapter answers wrongly where the base answered them right: what a
turn routed to that adapter by mistake would lose, and what the product's gate refuses on.

Resumable: the JSON is rewritten after every condition; the same command goes on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT))

from reproduce_selfparam import SYSTEM, Bench, Results, model_and_data_arguments  # noqa: E402

from learners import evaluate as ev  # noqa: E402
from learners.metrics import contains  # noqa: E402
from learners.selfparam import OPEN_PROMPTS, REPLAY_PROMPTS, replay_pairs  # noqa: E402
from memory.retention import Retention  # noqa: E402
from memory.store import Store  # noqa: E402

SETS = {"open": OPEN_PROMPTS, "mixed": REPLAY_PROMPTS}


class ReplayBench(Bench):
    def evaluate(self, backend, facts: list[dict], systems: list[str] | None = None) -> dict:
        """The harness's figures, and which general questions this model answers wrongly."""
        answers = ev.ask(backend, SYSTEM, [q for q, _ in ev.GENERAL_QUESTIONS])
        missed = {q: a for a, (q, golds) in zip(answers, ev.GENERAL_QUESTIONS) if not contains(a, golds)}
        return {**super().evaluate(backend, facts, systems), "general_missed": missed}


def broken(figures: dict, base: dict) -> dict[str, str]:
    """General questions the base answered right and this adapter answers wrongly, with its answer."""
    return {q: a for q, a in figures["general_missed"].items() if q not in base["general_missed"]}


def home_pairs(home: Path, facts: list[dict], needed: set[int]) -> list[list[tuple[str, str]]]:
    """The QA pairs a product home's nights wrote and stored for ``facts`` (matched by text); a
    fact in ``needed`` (indices) that the home never taught, or never wrote pairs for, is an error."""
    if not (home / "reverie.db").is_file():
        raise SystemExit(f"--from-home {home}: no reverie home there")
    store = Store.open(home)
    try:
        ids = {e.text: e.id for e in store.list_experiences()}
        stored = Retention(store).pairs(ids[f["context"]] for f in facts if f["context"] in ids)
    finally:
        store.close()
    pairs = [[(q, a) for q, a, _ in stored.get(ids.get(f["context"], -1), [])] for f in facts]
    if missing := sorted(i + 1 for i in needed if not pairs[i]):
        raise SystemExit(f"--from-home {home}: no stored pairs for facts {missing}")
    return pairs


def group(text: str) -> list[int]:
    try:
        indices = [int(i) - 1 for i in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: fact numbers joined by commas, e.g. 3,4") from None
    if not indices or min(indices) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: fact numbers start at 1")
    return indices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model_and_data_arguments(parser)
    parser.add_argument("--facts", type=int, default=10, help="facts whose pairs are written (the --pairs key)")
    parser.add_argument("--groups", nargs="+", type=group, default=[[2, 3], [4, 5]],
                        help="facts trained together, numbered from 1 (default: 3,4 5,6)")
    parser.add_argument("--from-home", type=Path, help="train on the pairs this reverie home's nights stored")
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--json", type=Path, default=ROOT / "examples" / "results" / "replay_sets.json")
    args = parser.parse_args()
    if max(i for g in args.groups for i in g) >= args.facts:
        parser.error(f"--groups: fact numbers run to --facts ({args.facts})")
    console = Console()
    facts = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()][: args.facts]
    bench = ReplayBench(args, console)
    results = Results(parser, args)  # resumed: a condition already in the JSON is not run again
    with Progress(console=console, transient=True) as progress:
        if args.from_home:
            needed = {i for g in args.groups for i in g}
            pairs, results["synthesis"] = home_pairs(args.from_home, facts, needed), {"from_home": str(args.from_home)}
        else:
            pairs, results["synthesis"] = bench.synthesize(facts, progress)
        tokenizer, model = bench.fresh()
        base = bench.backend(tokenizer, model, "base")
        replays = {name: replay_pairs(base, SYSTEM, prompts) for name, prompts in SETS.items() if name in args.sets}
        if "base" not in results:
            results["base"] = bench.evaluate(base, facts)
        del base, model
        done = results.setdefault("conditions", {})
        for indices in args.groups:
            key_group = ",".join(str(i + 1) for i in indices)
            for name in args.sets:
                key = f"{name}/{key_group}"
                if key in done:
                    continue
                bench.replay = replays[name]
                started = time.perf_counter()
                figures = bench.method("SELF-PARAM", [facts[i] for i in indices], [pairs[i] for i in indices], progress)
                done[key] = {**figures, "seconds": round(time.perf_counter() - started), "facts": key_group,
                             "replay": name, "broken": broken(figures, results["base"])}
                results.save()

    table = Table(title=f"replay sets on {args.model}: one adapter per group, no recall")
    for column in ("replay", "facts", "held-out", "unseen", "pollution", "general", "chat ppl", "broken"):
        table.add_column(column, justify="left" if column == "replay" else "right")
    base = results["base"]
    table.add_row("(base)", "", "", "", "", f"{base['general_contains']:.2f}", f"{base['perplexity']:.1f}", "")
    for r in results["conditions"].values():
        table.add_row(r["replay"], r["facts"], f"{r['contains']:.2f}", f"{r['unseen_contains']:.2f}", f"{r['pollution']:.2f}",
                      f"{r['general_contains']:.2f}", f"{r['perplexity']:.1f}", str(len(r["broken"])))
    console.print(table)
    for r in results["conditions"].values():
        for question, answer in r["broken"].items():
            console.print(f"{r['replay']} {r['facts']}: {question} -> {answer}", markup=False, highlight=False)
    console.print(f"figures: {args.json}")


if __name__ == "__main__":
    main()
