"""Logical consistency of the model as a pairwise judge, raw against calibrated, and ranking by
merge sort against asking for the whole order at once, in one run.

    python examples/eval_consistency.py                       # embedded SmolLM2-135M
    python examples/eval_consistency.py --model PATH_OR_ID --k 4

On ../shared/data/consistency/sets_dev.jsonl (sets of 5-7 items with one correct order), every
ordered pair is judged under the instruction and under its negation. Reported per set and on
average, for the raw comparator (one presentation order) and the calibrated one (both orders
averaged): s_comm, s_neg, s_tran(k) and agreement with the true order. Ranking quality is
Kendall tau against the true order, for merge sort on the calibrated comparator and for the
baseline that lists the order in one generation (unparseable or missing items are appended in
their listed order, and counted).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.llm import GenerationOptions, Message, load_backend  # noqa: E402
from agent.settings import load_settings  # noqa: E402
from graphs.verify import prompts  # noqa: E402
from graphs.verify.consistency import Comparator, SetJudgements, merge_sort, pairs_needed, positions, read_sets  # noqa: E402
from learners.metrics import kendall_tau  # noqa: E402


def list_order(instruction: str, items: list[str]) -> list[Message]:
    """The baseline: ask the model for the whole order at once (listwise), with no comparator."""
    listed = "\n".join(f"{i}. {item.strip()}" for i, item in enumerate(items, 1))
    return [{"role": "system", "content": "You put options in order."},
            {"role": "user", "content": (
                f"{instruction.strip()}\n\nOptions:\n{listed}\n\nList the option numbers in order, the one that "
                "fits the question best first, separated by commas. Reply with the numbers only.")}]


def listed_order(text: str, n: int) -> tuple[list[int], bool]:
    """Item indices in the order the model listed them; missing ones appended. Also: complete?"""
    seen = list(dict.fromkeys(int(x) - 1 for x in re.findall(r"\d+", text) if 1 <= int(x) <= n))
    return seen + [i for i in range(n) if i not in seen], len(seen) == n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--models-dir", type=Path, help="converted base models (default: HOME/models)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "consistency" / "sets_dev.jsonl")
    parser.add_argument("--k", type=int, default=3, help="subset size of s_tran")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, default=ROOT / "examples" / "results" / "consistency.json")
    args = parser.parse_args()
    console = Console(stderr=True)

    settings = load_settings(model=args.model, **({"models_dir": args.models_dir} if args.models_dir else {}))
    backend = load_backend(args.model, models_dir=settings.models_path, device=args.device)
    sets = read_sets(args.data.read_text().splitlines(), str(args.data))
    comparator, per_set = Comparator(backend), []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("comparing", total=pairs_needed(sets))
        for one in sets:
            progress.update(bar, description=f"comparing {one.id}")
            judged = SetJudgements.collect(comparator, one.instruction, one.items, one.negated_instruction,
                                           lambda: progress.advance(bar))
            n, truth = len(one.items), positions(one.true_order)
            sorted_order, comparisons = merge_sort(n, lambda i, j: judged.calibrated(i, j) > 0.5)
            answer = backend.generate(list_order(one.instruction, one.items), GenerationOptions(max_new_tokens=48))
            direct, complete = listed_order(answer.text, n)
            per_set.append({
                "id": one.id, "items": n,
                "raw": judged.figures(False, args.k, true_order=one.true_order),
                "calibrated": judged.figures(True, args.k, true_order=one.true_order),
                "tau_merge_sort": kendall_tau(positions(sorted_order), truth), "merge_sort_comparisons": comparisons,
                "tau_direct_list": kendall_tau(positions(direct), truth), "direct_list_complete": complete,
                "direct_list_text": answer.text,
            })

    def mean(key_path):
        values = [s[key_path[0]][key_path[1]] if len(key_path) == 2 else s[key_path[0]] for s in per_set]
        values = [v for v in values if v is not None]
        return round(statistics.mean(values), 3) if values else None

    figures = ["s_comm", "s_neg", f"s_tran_{args.k}", "agreement"]
    report = {
        "model": args.model, "k": args.k, "sets": per_set, "comparator_calls": comparator.calls, "prompts": prompts.VERSION,
        "overall": {
            **{view: {f: mean((view, f)) for f in figures} for view in ("raw", "calibrated")},
            "tau_merge_sort": mean(("tau_merge_sort",)), "tau_direct_list": mean(("tau_direct_list",)),
            "direct_list_complete": sum(s["direct_list_complete"] for s in per_set),
        },
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")

    table = Table("set, comparator", *figures, "tau: merge sort", "tau: direct list", title=f"Consistency, {args.model}")
    for s in [*per_set, {"id": "mean", **report["overall"]}]:
        for view in ("raw", "calibrated"):
            taus = (s["tau_merge_sort"], s["tau_direct_list"]) if view == "calibrated" else ("", "")
            table.add_row(f"{s['id']} {view}", *(_cell(s[view][f]) for f in figures), *(_cell(t) for t in taus))
    Console().print(table)
    console.print(f"[dim]{comparator.calls} comparator calls; the direct list named every item in "
                  f"{report['overall']['direct_list_complete']}/{len(per_set)} sets; wrote {args.json}[/dim]")


def _cell(value) -> str:
    return "-" if value is None else value if isinstance(value, str) else f"{value:.2f}"


if __name__ == "__main__":
    main()
