"""Why the Agent runs all its torch work on one thread: generation speed by which threads run torch.

    python examples/bench_torch_threads.py [--model PATH_OR_SPEC] [--repeats 3] [--rounds 6]

Each configuration runs in a fresh process (its state is per process), alternating with the
others `--repeats` times to spread the machine's noise:
  one thread      only the main thread ever runs torch;
  two threads     a worker thread generates while the main thread also runs some torch between
                  calls (a small matmul, like an embedding), as when LangGraph's "custom"
                  stream mode runs nodes on worker threads and the caller embeds;
  model thread    one long-lived worker does all the torch work, the main thread none (what
                  the Agent does).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIGS = ("one thread", "two threads", "model thread")


def child(config: str, model: str, rounds: int, max_new_tokens: int) -> list[float]:
    import torch

    from agent.llm import GenerationOptions, load_backend
    from agent.settings import load_settings

    messages = [{"role": "user", "content": "Tell me about the moon."}]
    options = GenerationOptions(max_new_tokens=max_new_tokens)
    models_dir = load_settings().models_path

    def timed(backend) -> float:
        started = time.perf_counter()
        backend.generate(messages, options)
        return time.perf_counter() - started

    if config == "one thread":
        backend = load_backend(model, models_dir=models_dir, device="cpu")
        run = lambda: timed(backend)  # noqa: E731
    else:
        worker = ThreadPoolExecutor(1)
        backend = worker.submit(load_backend, model, models_dir=models_dir, device="cpu").result()
        x = torch.randn(256, 256)

        def run() -> float:
            if config == "two threads":
                (x @ x).sum()
            return worker.submit(timed, backend).result()

    run()  # warm-up
    return [run() for _ in range(rounds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--repeats", type=int, default=3, help="processes per configuration")
    parser.add_argument("--rounds", type=int, default=6, help="timed generations per process")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.model, args.rounds, args.max_new_tokens)))
        return

    times: dict[str, list[float]] = {c: [] for c in CONFIGS}
    for repeat in range(args.repeats):
        for config in CONFIGS:
            command = [sys.executable, __file__, "--child", config, "--model", args.model,
                       "--rounds", str(args.rounds), "--max-new-tokens", str(args.max_new_tokens)]
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            times[config] += json.loads(out.strip().splitlines()[-1])
            print(f"repeat {repeat + 1}/{args.repeats}: {config} done", file=sys.stderr)
    base = statistics.median(times["one thread"])
    print(f"{args.model}, {args.max_new_tokens} new tokens, {args.repeats} processes x {args.rounds} generations:")
    for config in CONFIGS:
        median = statistics.median(times[config])
        print(f"  {config:13} median {median:.3f} s  min {min(times[config]):.3f} s  ({median / base:.2f}x)")


if __name__ == "__main__":
    main()
