"""How fast SELF-PARAM trains, and in how much memory, at several model sizes and on any device.

    python examples/bench_training_speed.py                            # 135M config, this machine
    python examples/bench_training_speed.py --sizes 135m,360m,1.7b --device cuda

Speed and memory do not depend on what the weights know, so the models are built from the
SmolLM2 configs with random weights (nothing is downloaded; only a tokenizer folder is read).
The target set has the shape of a real night: per fact, ``--pairs`` QA sentences whose teacher
sees the fact in its system prompt, plus ``--replay`` replay sentences for the batch; the same
``learners.selfparam.train`` the nightly graph runs (LoRA r 16 by default, or ``--full``).
Reported: seconds of training per fact, per optimiser step, and peak memory (CUDA: the
allocator's peak; CPU: the process's peak RSS). What a model learns is measured by
examples/reproduce_selfparam.py, which needs real weights.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphs.prompt import system_message  # noqa: E402
from learners.selfparam import SelfParamConfig, target_set, train  # noqa: E402

# SmolLM2 family shapes (hidden, intermediate, layers, heads, kv heads), from their config.json.
SIZES = {
    "135m": (576, 1536, 30, 9, 3),
    "360m": (960, 2560, 32, 15, 5),
    "1.7b": (2048, 8192, 24, 32, 32),
}
SYSTEM = "You are a helpful AI assistant."
JOBS = ("ferry mechanic", "piano tuner", "beekeeper", "lighthouse keeper", "glassblower")
TOWNS = ("Port Halvik", "Eddersby", "Masquelle", "Drumcairn", "Tiberly")


def build(size: str, tokenizer, device: str, dtype: torch.dtype):
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, inter, layers, heads, kv = SIZES[size]
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=inter,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
                         max_position_embeddings=8192, tie_word_embeddings=True, rope_theta=100000.0,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    return LlamaForCausalLM(config).to(device=device, dtype=dtype)


def night(tokenizer, facts: int, pairs: int, replay: int):
    rows = []
    for i in range(facts):
        fact = (f"My friend Person{i} works as a {JOBS[i % 5]} in {TOWNS[i % 5]}, "
                f"and has a greyhound called Pimento{i} who loves the beach.")
        questions = [f"What does Person{i} do for a living?", f"Where does Person{i} work?",
                     f"What is the name of Person{i}'s dog?", f"What does Pimento{i} love?"]
        answers = [f"Person{i} works as a {JOBS[i % 5]}.", f"Person{i} works in {TOWNS[i % 5]}.",
                   f"Person{i}'s greyhound is called Pimento{i}.", f"Pimento{i} loves the beach."]
        rows += [(i, fact, questions[k % 4], answers[k % 4]) for k in range(pairs)]
    rows += [(None, "", f"Tell me something about topic {j}.", "Here is a short, friendly answer about it.")
             for j in range(replay)]
    return target_set(tokenizer, SYSTEM, lambda x: system_message(SYSTEM, [x])["content"], rows)


def peak_mib(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="135m")
    parser.add_argument("--tokenizer", type=Path, help="a folder with the SmolLM2 tokenizer "
                        "(default: the converted embedded model in HOME/models)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--facts", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=4, help="QA sentences per fact")
    parser.add_argument("--replay", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    parser.add_argument("--json", type=Path, help="default: examples/results/training_speed_<device>.json")
    args = parser.parse_args()
    from transformers import AutoTokenizer

    if args.tokenizer is None:
        from agent.settings import load_settings

        args.tokenizer = load_settings().models_path / "smollm2-135m-instruct"
    tokenizer = AutoTokenizer.from_pretrained(str(args.tokenizer))
    sentences = night(tokenizer, args.facts, args.pairs, args.replay)
    config = SelfParamConfig(epochs=args.epochs, batch_size=args.batch_size, lora_r=0 if args.full else 16,
                             lr=5e-5 if args.full else 1e-3)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    results = []
    # One short warm-up run, so the first size measured does not pay for kernel loading.
    train(build("135m", tokenizer, args.device, getattr(torch, args.dtype)), tokenizer, sentences[:2],
          SelfParamConfig(epochs=1, batch_size=2))
    for size in args.sizes.split(","):
        model = build(size, tokenizer, args.device, getattr(torch, args.dtype))
        params = sum(p.numel() for p in model.parameters())
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        result = train(model, tokenizer, sentences, config)
        results.append({
            "size": size, "params_m": round(params / 1e6, 1), "method": "full" if args.full else "lora-r16",
            "dtype": args.dtype, "sentences": len(sentences), "steps": result.steps,
            "s_per_fact": round(result.seconds / args.facts, 2), "s_per_step": round(result.seconds / result.steps, 3),
            "peak_mib": round(peak_mib(args.device)), "final_kl": round(result.losses[-1], 4),
        })
        del model, result
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    report = {"device": device_name, "facts": args.facts, "pairs": args.pairs, "replay": args.replay,
              "epochs": args.epochs, "batch_size": args.batch_size, "results": results}
    out = args.json or ROOT / "examples" / "results" / f"training_speed_{args.device.split(':')[0]}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    table = Table("model", "method", "s/fact", "s/step", "peak MiB", title=f"SELF-PARAM training on {device_name}")
    for r in results:
        table.add_row(f"{r['size']} ({r['params_m']}M)", f"{r['method']} {r['dtype']}", str(r["s_per_fact"]),
                      str(r["s_per_step"]), str(r["peak_mib"]))
    Console().print(table)


if __name__ == "__main__":
    main()
