"""reverie's SELF-PARAM side by side with TRL's SDFTTrainer: same facts, QA pairs, model and epochs.

    pip install 'reverie[bench]'                 # TRL 1.16: a benchmark-only extra, never in the default install
    python examples/compare_sdft.py               # the first 10 facts, embedded model
    python examples/compare_sdft.py --model PATH_OR_ID --facts 10

The facts' QA pairs are written once by reverie's own writer (``learners.synthesis``). Then, each
from a fresh base with a LoRA adapter of the same rank, learning rate and epochs:
  SELF-PARAM  reverie: the QA sentences, teacher = the base with the fact in its system prompt,
              forward KL on the whole vocabulary, plus replay of the model's own answers
  SDFT        TRL's ``trl.experimental.sdft.SDFTTrainer`` (Hubotter et al. 2026): the same
              questions as prompts, the fact as ``privileged_context`` for the teacher (the base,
              ``teacher_model_kind="base"``), on-policy completions, top-k logit distillation
Scored as every SELF-PARAM benchmark here: held-out and unseen "contains" with recall off,
near-miss pollution, general questions and chat perplexity, learning seconds per fact.
Each condition is written to the JSON as soon as it is measured; a run again skips those done.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT))

from reproduce_selfparam import SYSTEM, Bench, Results, model_and_data_arguments  # noqa: E402

TRL_VERSION = "1.16.0"
MISSING = (f"skipped: TRL {TRL_VERSION} is not installed (a benchmark-only extra): "
           f"pip install 'reverie[bench]' or pip install trl=={TRL_VERSION}")


def load_sdft():
    """TRL's SDFT classes, imported only here: the default install has no TRL."""
    try:
        from trl.experimental.sdft import SDFTConfig, SDFTTrainer
    except ImportError:
        return None
    return SDFTConfig, SDFTTrainer


def sdft(bench: Bench, facts: list[dict], pairs: list[list], classes, args) -> dict:
    from datasets import Dataset
    from peft import LoraConfig

    config_cls, trainer_cls = classes
    tokenizer, model = bench.fresh()
    rows = [{"prompt": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}],
             "privileged_context": fact["context"]} for fact, ps in zip(facts, pairs) for q, _ in ps]
    with tempfile.TemporaryDirectory() as out:
        config = config_cls(
            # SDFT's data loader has no length (it samples on-policy), so the Trainer needs max_steps:
            # the steps of ``epochs`` passes over the questions, as SELF-PARAM takes them.
            output_dir=out, max_steps=math.ceil(len(rows) / 8) * args.epochs, learning_rate=args.lr,
            per_device_train_batch_size=8,
            num_generations=1, max_completion_length=args.completion_tokens, teacher_model_kind="base",
            report_to="none", logging_steps=10, save_strategy="no", seed=0, use_cpu=bench.device.type == "cpu",
            bf16=False,
        )
        lora = LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r, target_modules="all-linear", task_type="CAUSAL_LM")
        trainer = trainer_cls(model=model, args=config, train_dataset=Dataset.from_list(rows),
                              processing_class=tokenizer, peft_config=lora)
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    figures = bench.evaluate(bench.backend(tokenizer, trainer.model.eval(), "SDFT"), facts)
    return {**figures, "learn_s_per_fact": round(seconds / len(facts), 1), "sentences": len(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    model_and_data_arguments(parser)
    parser.add_argument("--facts", type=int, default=10)
    parser.add_argument("--completion-tokens", type=int, default=48, help="SDFT's on-policy completion length")
    parser.add_argument("--json", type=Path, default=ROOT / "examples" / "results" / "compare_sdft.json")
    args = parser.parse_args()
    console = Console()
    classes = load_sdft()
    if classes is None:
        print(MISSING)
        return
    facts = [json.loads(line) for line in args.data.read_text().splitlines()][: args.facts]
    results = Results(parser, args)
    conditions = results.setdefault("conditions", {})
    bench = Bench(args, console)
    save = results.save

    with Progress(console=console, transient=True) as progress:
        pairs, results["synthesis"] = bench.synthesize(facts, progress)
        if "no context" not in conditions:
            tokenizer, model = bench.fresh()
            conditions["no context"] = bench.evaluate(bench.backend(tokenizer, model, "base"), facts)
            save()
        if "SELF-PARAM (reverie)" not in conditions:
            conditions["SELF-PARAM (reverie)"] = bench.method("SELF-PARAM", facts, pairs, progress)
            save()
        if f"SDFT (TRL {TRL_VERSION})" not in conditions:
            conditions[f"SDFT (TRL {TRL_VERSION})"] = sdft(bench, facts, pairs, classes, args)
            save()
    table = Table(title=f"{args.facts} facts on {args.model}: held-out questions, no recall")
    for column in ("condition", "contains", "unseen", "QA-F1", "pollution", "general", "chat ppl", "learn s/fact"):
        table.add_column(column, justify="left" if column == "condition" else "right")
    for name, r in conditions.items():
        table.add_row(name, f"{r['contains']:.2f}", f"{r['unseen_contains']:.2f}", f"{r['f1']:.3f}",
                      f"{r['pollution']:.2f}", f"{r['general_contains']:.2f}", f"{r['perplexity']:.1f}",
                      str(r.get("learn_s_per_fact", "-")))
    console.print(table)
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
