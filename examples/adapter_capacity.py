"""How many facts one LoRA adapter holds: the same facts trained k at a time, for several k.

    python examples/adapter_capacity.py                     # 8 facts, k = 1, 2, 4, 8, embedded model
    python examples/adapter_capacity.py --model PATH_OR_ID --facts 8 --sizes 1 2 4 8

Each fact's QA pairs are written once (the product's writer); then for each group size k the
facts are split into groups of k, each group trained into a fresh adapter from the base
(SELF-PARAM with the product's defaults and replay), and each fact is asked its held-out questions
with its own group's adapter (no routing: what the adapter holds, not what finds it). The night
size default (``learn.adapter_size``) is the largest k whose per-fact score is at least 0.8 of the
best k's. Figures are written after each k; run again to go on from the next one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT))

from reproduce_selfparam import Bench, Results, model_and_data_arguments  # noqa: E402

from agent.progress import Bars  # noqa: E402
from learners.selfparam import train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    model_and_data_arguments(parser)
    parser.add_argument("--facts", type=int, default=8)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--json", type=Path, default=ROOT / "examples" / "results" / "adapter_capacity.json")
    args = parser.parse_args()
    console = Console()
    facts = [json.loads(line) for line in args.data.read_text().splitlines()][: args.facts]
    results = Results(parser, args)
    sizes = results.setdefault("sizes", {})
    bench = Bench(args, console)
    save = results.save

    with Progress(console=console, transient=True) as progress:
        pairs, results["synthesis"] = bench.synthesize(facts, progress)
        for k in args.sizes:
            if str(k) in sizes:
                continue
            per_fact, unseen, general, seconds = [], [], [], 0.0
            for first in range(0, len(facts), k):
                group, group_pairs = facts[first : first + k], pairs[first : first + k]
                tokenizer, model = bench.fresh()
                started = time.perf_counter()
                result = train(model, tokenizer, bench.target(tokenizer, group, group_pairs), bench.config,
                               progress=Bars(progress))
                seconds += time.perf_counter() - started
                figures = bench.evaluate(bench.backend(tokenizer, result.model, f"k={k}"), group)
                per_fact += figures["per_fact"]
                unseen.append(figures["unseen_contains"] * len(group))
                general.append(figures["general_contains"])
            sizes[str(k)] = {"contains": round(statistics.mean(per_fact), 3),
                             "unseen": round(sum(unseen) / len(facts), 3), "general_min": min(general),
                             "learn_s_per_fact": round(seconds / len(facts), 1), "per_fact": per_fact}
            save()
    best = max(s["contains"] for s in sizes.values())
    holding = [int(k) for k, s in sizes.items() if s["contains"] >= 0.8 * best]
    results["capacity"] = max(holding) if holding and best > 0 else None
    save()
    table = Table(title=f"facts per adapter on {args.model}: held-out contains, each fact with its own adapter")
    for column in ("k (facts per adapter)", "contains", "unseen", "general (worst adapter)", "learn s/fact"):
        table.add_column(column, justify="right")
    for k, s in sorted(sizes.items(), key=lambda kv: int(kv[0])):
        table.add_row(k, f"{s['contains']:.2f}", f"{s['unseen']:.2f}", f"{s['general_min']:.2f}", str(s["learn_s_per_fact"]))
    console.print(table)
    console.print(f"capacity (largest k at >= 0.8 of the best): {results['capacity']}; wrote {args.json}")


if __name__ == "__main__":
    main()
