"""Per-turn cost of reverie's chat graph against a bare generate on the same prompts.

    python examples/bench_chat.py                       # embedded SmolLM2-135M, 12 turns
    python examples/bench_chat.py --model PATH_OR_ID --turns 30 --max-new-tokens 64

For each question the agent answers in a new thread (recall -> respond -> verify -> log, with
the SQLite checkpointer), then the same backend generates from the exact prompt that turn used
(system line + recalled memories + question), greedy, so both produce the same tokens. The two
alternate question by question, after a warm-up, so neither gets a warmer cache. The difference
is what the graph, recall and logging cost; recall and logging are also timed on their own.
Questions and facts come from ../shared/data/facts (taught first, so recall has work to do).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import track
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent import Agent  # noqa: E402
from agent.chat import generation_options  # noqa: E402
from graphs.prompt import system_message  # noqa: E402
from memory.records import NewTurn  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--turns", type=int, default=12, help="questions to time (after 2 warm-up turns)")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "facts" / "facts_dev.jsonl")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    console = Console()

    facts = [json.loads(line) for line in args.data.read_text().splitlines()]
    questions = [qa["q"] for f in facts for qa in f["qa"] if qa["split"] == "train"]
    needed = args.turns + 2
    questions = (questions * (needed // len(questions) + 1))[:needed]

    with tempfile.TemporaryDirectory() as home, Agent.open(
        home, model=args.model, max_new_tokens=args.max_new_tokens
    ) as bot:
        bot.teach_many([f["context"] for f in facts], user="bench")
        backend, options = bot.backend, generation_options(bot.settings)
        rows = []
        for i, question in enumerate(track(questions, description="timing turns", console=console)):
            started = time.perf_counter()
            reply = bot.chat(question, user="bench")
            agent_s = time.perf_counter() - started

            prompt = [
                system_message(bot.settings.system_prompt, [m["text"] for m in reply.memories]),
                {"role": "user", "content": question},
            ]
            # On the agent's model thread, like the turn itself: torch on two threads is slower.
            started = time.perf_counter()
            bare = bot.on_model_thread(backend.generate, prompt, options)
            bare_s = time.perf_counter() - started
            if bare.text != reply.text:
                raise SystemExit(f"the bare run answered differently on {question!r}: not the same prompt")

            started = time.perf_counter()
            bot.on_model_thread(
                bot.store.search, question, user="bench", k=bot.settings.recall_k, min_score=bot.settings.recall_min_score
            )
            recall_s = time.perf_counter() - started
            scratch = bot.store.create_thread("bench-log")
            started = time.perf_counter()
            bot.on_model_thread(
                bot.store.record_turns,
                NewTurn(thread_id=scratch.id, user="bench-log", role="user", content=question),
                NewTurn(thread_id=scratch.id, user="bench-log", role="assistant", content=reply.text),
            )
            log_s = time.perf_counter() - started
            if i >= 2:  # the first two turns load caches and are not counted
                rows.append(dict(agent=agent_s, bare=bare_s, recall=recall_s, log=log_s, tokens=reply.completion_tokens))

    median = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
    overhead = [r["agent"] - r["bare"] for r in rows]
    share = [o / r["agent"] for o, r in zip(overhead, rows)]
    figures = {
        "model": args.model,
        "turns": len(rows),
        "max_new_tokens": args.max_new_tokens,
        "median_completion_tokens": median["tokens"],
        "median_bare_generate_s": round(median["bare"], 4),
        "median_agent_turn_s": round(median["agent"], 4),
        "median_overhead_s": round(statistics.median(overhead), 4),
        "median_overhead_share": round(statistics.median(share), 4),
        "mean_overhead_share": round(statistics.mean(share), 4),
        "median_recall_s": round(median["recall"], 4),
        "median_log_s": round(median["log"], 4),
    }
    table = Table(title=f"one chat turn, {args.model}, median of {len(rows)} turns", box=None)
    table.add_column("what")
    table.add_column("seconds", justify="right")
    table.add_row("bare generate on the same prompt", f"{figures['median_bare_generate_s']:.3f}")
    table.add_row("reverie turn (graph + recall + log)", f"{figures['median_agent_turn_s']:.3f}")
    table.add_row("overhead", f"{figures['median_overhead_s']:.3f} ({figures['median_overhead_share']:.1%})")
    table.add_row("  of which recall (search), alone", f"{figures['median_recall_s']:.3f}")
    table.add_row("  of which logging (2 turns + index), alone", f"{figures['median_log_s']:.3f}")
    console.print(table)
    console.print(f"median completion: {median['tokens']:.0f} tokens; overhead goal: under 5% of the turn")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
