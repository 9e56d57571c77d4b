"""Rehearsal schedules for sequential SELF-PARAM, side by side, on one fixed set of QA pairs.

    python examples/rehearsal_schedules.py                         # 6 facts, 3 nights, embedded model
    python examples/rehearsal_schedules.py --facts 10 --schedules 0 2 all fresh --model PATH_OR_ID

The product's nights (`reproduce_selfparam.py --skip batch single`) also write new pairs and
gate every candidate, so one schedule costs half an hour there. This harness writes the pairs
once (``learners.synthesis``, product defaults), then replays the same nights under each
schedule, without the gate, so schedules differ only in what each night trains on:

  N       one LoRA adapter trained on night after night (as the product's version line), with
          the N earlier facts that scored lowest after the previous night put back into S
  all     the same adapter, every earlier fact rehearsed every night
  fresh   a fresh adapter from the base every night, on every fact so far (batch on the log)
  sum     a fresh adapter from the base every night, on that night's facts only; the model after
          a night is the base plus every night's adapter so far, summed (PEFT's exact "cat"
          combination), so no night's training touches an earlier night's weights

After each night: held-out "contains" of every fact taught so far, with recall off. Reported:
the first night's facts over the nights (retention), the mean over all facts after the last
night, general ability, and learning seconds per taught fact. Writes JSON and a PNG.
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
from rich.progress import Progress
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT))

from reproduce_selfparam import Bench, model_and_data_arguments  # noqa: E402

from agent.progress import Bars  # noqa: E402
from learners.selfparam import train  # noqa: E402


def rehearsed(schedule: str, earlier: list[int], scores: list[float]) -> list[int]:
    """The earlier facts a night trains on again: all of them, or the N weakest (as ``learn.rehearse``)."""
    if schedule in ("all", "fresh"):
        return earlier
    if schedule == "sum":
        return []
    return sorted(sorted(earlier, key=lambda i: (scores[i], i))[: int(schedule)])


def run_schedule(bench: Bench, schedule: str, facts: list[dict], pairs: list[list], per_night: int,
                 progress: Progress) -> dict:
    tokenizer, model = bench.fresh()
    nights, seconds, scores = [], 0.0, []
    saved = tempfile.TemporaryDirectory()  # the "sum" schedule's adapters, one folder a night
    for night in range(len(facts) // per_night):
        new = list(range(night * per_night, (night + 1) * per_night))
        earlier = list(range(night * per_night))
        if schedule in ("fresh", "sum") and night:
            tokenizer, model = bench.fresh()
        trained = rehearsed(schedule, earlier, scores) + new
        progress.console.print(f"schedule {schedule}, night {night + 1}", style="dim")
        started = time.perf_counter()
        result = train(model, tokenizer, bench.target(tokenizer, [facts[i] for i in trained], [pairs[i] for i in trained]),
                       bench.config, progress=Bars(progress))
        seconds += time.perf_counter() - started
        model = result.model  # a PeftModel: the next night trains the same adapter on
        if schedule == "sum":
            model.save_pretrained(f"{saved.name}/night{night + 1}")
            model = summed_adapters(bench, saved.name, night + 1)
        figures = bench.evaluate(bench.backend(tokenizer, model, f"night {night + 1}"), facts[: (night + 1) * per_night])
        scores = figures["per_fact"]
        nights.append({"night": night + 1, "trained": trained, "per_fact": scores,
                       "general_contains": figures["general_contains"], "perplexity": figures["perplexity"]})
    first = [statistics.mean(n["per_fact"][:per_night]) for n in nights]
    return {"nights": nights, "first_night": first, "final": statistics.mean(nights[-1]["per_fact"]),
            "general_contains": nights[-1]["general_contains"], "perplexity": nights[-1]["perplexity"],
            "learn_s_per_fact": round(seconds / len(facts), 1)}


def summed_adapters(bench: Bench, folder: str, nights: int):
    """The base with the adapters of nights 1..``nights`` added together."""
    from peft import PeftModel

    _, base = bench.fresh()
    model = PeftModel.from_pretrained(base, f"{folder}/night1", adapter_name="night1")
    for night in range(2, nights + 1):
        model.load_adapter(f"{folder}/night{night}", adapter_name=f"night{night}")
    names = [f"night{n}" for n in range(1, nights + 1)]
    model.add_weighted_adapter(names, [1.0] * nights, "sum", combination_type="cat")
    model.set_adapter("sum")
    return model.eval()


def plot(results: dict, path: Path) -> None:
    from agent.plots import _pyplot

    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, r in results["schedules"].items():
        x = [n["night"] for n in r["nights"]]
        left.plot(x, r["first_night"], marker="o", label=f"rehearse {name}")
        right.plot(x, [statistics.mean(n["per_fact"]) for n in r["nights"]], marker="o", label=f"rehearse {name}")
    left.set_title("first night's facts, after each night")
    right.set_title("all facts taught so far")
    for axis in (left, right):
        axis.set_xlabel("night")
        axis.set_ylabel('held-out "contains", no recall')
        axis.set_ylim(0, 1)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    model_and_data_arguments(parser)
    parser.add_argument("--facts", type=int, default=6)
    parser.add_argument("--per-night", type=int, default=2)
    parser.add_argument("--schedules", nargs="+", default=["0", "all", "fresh"],
                        help="each: a number of earlier facts rehearsed, 'all', 'fresh' or 'sum'")
    parser.add_argument("--json", type=Path, default=ROOT / "examples" / "results" / "rehearsal_schedules.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "examples" / "results" / "rehearsal_schedules.png")
    args = parser.parse_args()
    for schedule in args.schedules:
        if not (schedule in ("all", "fresh", "sum") or schedule.isdigit()):
            parser.error(f"a schedule is a number, 'all', 'fresh' or 'sum', not {schedule!r}")
    if args.lora_r < 1:
        parser.error("--lora-r: a rank >= 1 (the schedules train LoRA adapters)")
    console = Console()
    facts = [json.loads(line) for line in args.data.read_text().splitlines()][: args.facts]
    bench = Bench(args, console)
    results: dict = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "schedules": {}}
    with Progress(console=console, transient=True) as progress:
        pairs, results["synthesis"] = bench.synthesize(facts, progress)
        for schedule in args.schedules:
            results["schedules"][schedule] = run_schedule(bench, schedule, facts, pairs, args.per_night, progress)

    table = Table(title=f"rehearsal schedules on {args.model}: {args.facts} facts, {args.per_night} a night, no gate")
    for column in ("rehearse", "first night's facts, night by night", "all facts, last night", "general", "chat ppl",
                   "learn s/fact"):
        table.add_column(column, justify="left" if column == "rehearse" else "right")
    for name, r in results["schedules"].items():
        table.add_row(name, " -> ".join(f"{v:.2f}" for v in r["first_night"]), f"{r['final']:.2f}",
                      f"{r['general_contains']:.2f}", f"{r['perplexity']:.1f}", str(r["learn_s_per_fact"]))
    console.print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))
    plot(results, args.plot)
    console.print(f"wrote {args.json} and {args.plot}")


if __name__ == "__main__":
    main()
