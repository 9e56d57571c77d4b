"""Does recall make the agent answer from what it was taught? Side by side against the bare model.

    python examples/bench_recall.py                      # embedded SmolLM2-135M, all 100 questions
    python examples/bench_recall.py --model PATH_OR_ID --limit 40

Teaches the 20 fictional experiences of ../shared/data/facts (one user), then asks each of their
probe questions in a new thread under three conditions, one run:
  no recall            the weights alone (the model cannot know these invented facts);
  recall              the default: top-k memories of the user put into the system prompt;
  recall, rep. 1.1    the same with repetition_penalty=1.1, a common default that also
                      penalises the recalled tokens the answer should copy.
Reports "contains" (a gold answer inside the reply) and SQuAD QA-F1 of the replies, and how
often retrieval put the right experience among the recalled memories (hit@k) and first (hit@1).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent import Agent  # noqa: E402
from learners.metrics import contains, qa_f1  # noqa: E402

CONDITIONS = {
    "no recall": dict(recall=False, repetition_penalty=1.0),
    "recall": dict(recall=True, repetition_penalty=1.0),
    "recall, rep. 1.1": dict(recall=True, repetition_penalty=1.1),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--limit", type=int, help="ask only the first N questions")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "facts" / "facts_dev.jsonl")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    console = Console()

    facts = [json.loads(line) for line in args.data.read_text().splitlines()]
    probes = [(i, qa) for i, fact in enumerate(facts) for qa in fact["qa"]][: args.limit]
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as home, Progress(console=console) as progress:
        with Agent.open(home, model=args.model) as bot:
            experience_ids = bot.teach_many([f["context"] for f in facts], user="bench")
        for name, condition in CONDITIONS.items():
            # One agent per condition, closed before the next opens: one thread runs torch at a time.
            with Agent.open(home, model=args.model, max_new_tokens=args.max_new_tokens, **condition) as bot:
                task = progress.add_task(name, total=len(probes))
                hits, firsts, found, f1s = [], [], [], []
                for fact_index, qa in probes:
                    reply = bot.chat(qa["q"], user="bench")
                    recalled = [m["id"] for m in reply.memories]
                    hits.append(experience_ids[fact_index] in recalled)
                    firsts.append(recalled[:1] == [experience_ids[fact_index]])
                    found.append(contains(reply.text, qa["a"]))
                    f1s.append(qa_f1(reply.text, qa["a"]))
                    progress.advance(task)
            results[name] = {
                "contains": round(statistics.mean(found), 3),
                "qa_f1": round(statistics.mean(f1s), 3),
                "hit_at_k": round(statistics.mean(hits), 3),
                "hit_at_1": round(statistics.mean(firsts), 3),
            }

    table = Table(title=f"{len(probes)} probe questions on 20 taught facts, {args.model}", box=None)
    for column in ("condition", "contains", "QA-F1", "right fact recalled (top-k)", "right fact first"):
        table.add_column(column, justify="left" if column == "condition" else "right")
    for name, r in results.items():
        recalled = "-" if name == "no recall" else f"{r['hit_at_k']:.2f}"
        first = "-" if name == "no recall" else f"{r['hit_at_1']:.2f}"
        table.add_row(name, f"{r['contains']:.2f}", f"{r['qa_f1']:.3f}", recalled, first)
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "questions": len(probes), **results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
