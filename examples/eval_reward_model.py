"""What cleaning is worth to the feedback reward model: trained on noisy labels against trained on
clean ones, held-out pairwise accuracy on true labels, in one run.

    python examples/eval_reward_model.py                      # embedded SmolLM2-135M, 3 folds
    python examples/eval_reward_model.py --model PATH_OR_ID --epochs 5

On ../shared/data/preferences/prefs_dev.jsonl (24 clear pairs: factual, helpfulness, code, safety;
a quarter of their labels flipped on purpose): the clear pairs split into ``--folds`` folds; for
each, a reward model (``learners.reward_model``: LoRA and a scalar head, Bradley-Terry) is
trained on the other folds' pairs with their noisy labels, and once more with their true labels
(what a perfect cleaner would hand it), and scored on the held-out fold's true labels. The
untrained model (a zero head: every pair a tie) scores 0.5.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.llm import resolve_model  # noqa: E402
from agent.settings import load_settings  # noqa: E402
from learners import reward_model as rm  # noqa: E402


def pairs(rows: list[dict], label: str) -> list[rm.Pair]:
    out = []
    for row in rows:
        a, b = row["response_a"], row["response_b"]
        chosen, rejected = (a, b) if row[label] == "a" else (b, a)
        out.append(rm.Pair([{"role": "user", "content": row["prompt"]}], chosen, rejected))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--models-dir", type=Path, help="converted base models (default: HOME/models)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "preferences" / "prefs_dev.jsonl")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=rm.RewardConfig().epochs)
    parser.add_argument("--json", type=Path, default=ROOT / "examples" / "results" / "reward_model.json")
    args = parser.parse_args()
    console = Console(stderr=True)
    settings = load_settings(None, **({"models_dir": args.models_dir} if args.models_dir else {}))
    source = resolve_model(args.model, settings.models_path)
    rows = [json.loads(line) for line in args.data.read_text().splitlines()]
    clear = [r for r in rows if not r["subjective"] and not r["both_bad"]]
    folds = [clear[i :: args.folds] for i in range(args.folds)]
    config = rm.RewardConfig(epochs=args.epochs, min_pairs=2)
    results: dict[str, list] = {"noisy labels": [], "clean labels": []}
    seconds = []
    for k, held in enumerate(folds):
        train_rows = [r for j, f in enumerate(folds) if j != k for r in f]
        for method, label in (("noisy labels", "noisy_label"), ("clean labels", "true_label")):
            model, tokenizer = rm.load(source)
            start = time.perf_counter()
            trained = rm.train(model, tokenizer, pairs(train_rows, label), config)
            seconds.append(time.perf_counter() - start)
            score = rm.accuracy(trained.model, tokenizer, pairs(held, "true_label"))["accuracy"]
            results[method].append(score)
            console.print(f"fold {k + 1}: {method}: held-out accuracy {score:.3f} "
                          f"({sum(r['planted_flip'] for r in train_rows)} of {len(train_rows)} training labels flipped)")
    summary = {m: {"mean": round(statistics.mean(v), 3), "folds": v} for m, v in results.items()}
    out = {"model": args.model, "pairs": len(clear), "folds": args.folds, "epochs": args.epochs,
           "s_per_training": round(statistics.mean(seconds), 1), "untrained": 0.5, "results": summary}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1))
    table = Table("reward model trained on", "held-out accuracy (true labels)", "per fold")
    table.add_row("nothing (zero head)", "0.500", "")
    for method, figures in summary.items():
        table.add_row(method, f"{figures['mean']:.3f}", ", ".join(f"{v:.2f}" for v in figures["folds"]))
    console.print(table)
    console.print(f"written {args.json}")


if __name__ == "__main__":
    main()
