"""A model's judge card, and what it saves a chat turn that writes code, in one run.

    python examples/eval_card.py                       # embedded SmolLM2-135M, 2 cores (about 10 minutes)
    python examples/eval_card.py --model PATH_OR_ID --turns 5

  card          ``Agent.card()`` (cached; ``--refresh`` measures again): CodeJudge tau-b against test results, the comparator's
                consistency, the cleaning committee's accuracy on labelled pairs, in-context QA
                (``graphs.verify.card``), and the modes it sets (``agent.judges``)
  code answers  the same requests for code, answered with the code check as it was before the card
                (``verify_code`` binary and trusted: every code answer judged, and revised on a No)
                and as the card sets it (auto): seconds per turn, verdicts given, answers revised

Writes JSON as each part is measured.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent import Agent  # noqa: E402
from agent.progress import shown  # noqa: E402

REQUESTS = ["Write a Python function add(a, b) that returns the sum of a and b.",
            "Write a Python function is_even(n) that returns True when n is even.",
            "Write a Python function largest(xs) that returns the largest number in a list.",
            "Write a Python function reverse(s) that returns the string s reversed.",
            "Write a Python function count_vowels(s) that counts the vowels in s."]


def code_turns(home: str, overrides: dict, turns: int) -> dict:
    with Agent.open(home, **overrides) as bot:
        bot.chat("Hello")  # load and warm up
        took, verdicts, revised = [], 0, 0
        for request in REQUESTS[:turns]:
            started = time.perf_counter()
            reply = bot.chat(request, recall=False)
            took.append(time.perf_counter() - started)
            code = [v for v in reply.verdicts if v.get("kind") == "code"]
            verdicts += len(code)
            revised += sum(bool(v.get("revised")) for v in code)
        return {"mode": bot.judge_modes().code_check.model_dump(), "turns": len(took),
                "median_s": round(statistics.median(took), 2), "mean_s": round(statistics.mean(took), 2),
                "verdicts": verdicts, "revised": revised}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--models-dir", type=Path, help="converted base models and their cards (default: a temp home's)")
    parser.add_argument("--turns", type=int, default=5, help="code requests per condition (at most 5)")
    parser.add_argument("--refresh", action="store_true", help="measure the card even when one is cached")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--json", type=Path, default=ROOT / "examples" / "results" / "card.json")
    args = parser.parse_args()
    console = Console(stderr=True)
    results: dict = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}

    def save(key: str, value) -> None:
        results[key] = value
        console.print(key, json.dumps(value)[:400], markup=False)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")

    overrides = {"model": args.model, "max_new_tokens": args.max_new_tokens,
                 **({"models_dir": str(args.models_dir)} if args.models_dir else {})}
    with tempfile.TemporaryDirectory() as home:
        with Agent.open(home, **overrides) as bot, shown(console) as progress:
            card = bot.card(refresh=args.refresh, progress=progress)
            save("card", card.model_dump())
            save("modes", bot.judge_modes().model_dump())
        before = {"verify_code": "binary", "judges": {"min_code_tau": -1.0}}  # trusted whatever it measures
        for name, settings in (("before: every code answer judged", before), ("after: as the card sets it", {})):
            save(name, code_turns(home, {**overrides, **settings}, args.turns))
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
