"""The refine step through the product: a user's policy refined by CORY on a prompt set with
exact answers, gated on held-out prompts, and promoted or refused (``reverie learn --only cory``).

    python examples/refine_arithmetic.py                       # embedded model, 24 prompts, 12 iterations
    python examples/refine_arithmetic.py --model PATH_OR_ID --iterations 20

The prompt set is 24 one-digit additions ("What is 3 plus 5? Answer with the number."); a
quarter is held out. The same as, from a shell:

    reverie learn --only cory --set refine.reward=exact --set refine.prompts=PROMPTS.jsonl \\
        --set cory.epochs=12 --set cory.max_new_tokens=16
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402


def prompt_set(path: Path, count: int, seed: int) -> Path:
    rng, pairs = random.Random(seed), []
    while len(pairs) < count:
        pair = (rng.randint(1, 9), rng.randint(1, 9))
        if pair not in pairs:
            pairs.append(pair)
    path.write_text("\n".join(json.dumps({"prompt": f"What is {a} plus {b}? Answer with the number.",
                                          "answer": a + b}) for a, b in pairs))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--models-dir", type=Path, help="converted base models (default: HOME/models)")
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, default=ROOT / "examples" / "results" / "refine_arithmetic.json")
    args = parser.parse_args()
    from agent import Agent
    from agent.progress import shown

    console = Console(stderr=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as home:
        prompts = prompt_set(Path(home) / "prompts.jsonl", args.prompts, 5)
        extra = {"models_dir": args.models_dir} if args.models_dir else {}
        with Agent.open(home, model=args.model, threads=args.threads, refine={"reward": "exact", "prompts": str(prompts)},
                        cory={"epochs": args.iterations, "max_new_tokens": 16}, **extra) as bot:
            with shown(console) as progress:
                refine = bot.learn(only="cory", progress=progress).refine
    result = {**{k: refine.get(k) for k in ("prompts", "figures", "current", "passed", "reasons", "promoted")},
              "curve": refine["training"]["curve"] if refine.get("training") else None,
              "seconds": round(time.perf_counter() - started, 1), "model": args.model}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    Console().print_json(data=result)


if __name__ == "__main__":
    main()
