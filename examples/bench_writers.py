"""Four writers at once while a night learns: do any of their writes fail or vanish?

    python examples/bench_writers.py                   # the embedded model, 4 writers
    python examples/bench_writers.py --model PATH --rounds 10

A home is taught a few facts and `reverie learn` starts on it. Meanwhile four processes write
through the Python API, each its own kind: one chats (a turn writes the log and the
checkpoint), one teaches (embedding, then the log and the index), two give feedback on an
earlier turn. Every write that raises is a failure; afterwards every write that returned must be
in the log, else it was lost. The same writers also run with no night learning, for the base
line. Figures go to examples/results/bench_writers.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "examples" / "results" / "bench_writers.json"


def writer(kind: str, home: str, model: str, rounds: int, turn_id: int, results) -> None:
    try:
        results.put(_write(kind, home, model, rounds, turn_id))
    except BaseException as exc:  # a writer that cannot even start is a failure too, not a hang
        results.put({"kind": kind, "done": [], "failed": [f"{type(exc).__name__}: {exc}"] * rounds, "latencies": [0.0]})


def _write(kind: str, home: str, model: str, rounds: int, turn_id: int) -> dict:
    from agent import Agent, ReverieError

    done, failed, latencies = [], [], []
    with Agent.open(home, model=model, max_new_tokens=12) as bot:
        for i in range(rounds):
            started = time.perf_counter()
            try:
                if kind == "chat":
                    done.append(("turn", bot.chat(f"Writer question {i}: what is a noun?", user="w").turn_id))
                elif kind == "teach":
                    done.append(("experience", bot.teach(f"Writer fact {i}: the locker code is {1000 + i}.", user="w")))
                else:
                    done.append(("feedback", bot.feedback(turn_id, "comment", text=f"{kind} note {i}").id))
            except ReverieError as exc:
                failed.append(str(exc))
            latencies.append(time.perf_counter() - started)
    return {"kind": kind, "done": done, "failed": failed, "latencies": latencies}


def trial(home: str, model: str, rounds: int, learning: bool, console: Console) -> dict:
    from agent import Agent

    with Agent.open(home, model=model, max_new_tokens=12) as bot:
        turn_id = bot.chat("Hello, who are you?", user="w").turn_id
    night = None
    if learning:
        night = subprocess.Popen([str(Path(sys.executable).with_name("reverie")), "--home", home, "--model", model,
                                  "--set", "selfparam.epochs=3", "--set", "synthesis.samples=1", "learn"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(5)  # let it load and start writing pairs
    # Spawned, not forked: this process already runs torch threads, which a fork does not survive.
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    kinds = ["chat", "teach", "feedback-a", "feedback-b"]
    started = time.perf_counter()
    workers = [spawn.Process(target=writer, args=(k, home, model, rounds, turn_id, results)) for k in kinds]
    for w in workers:
        w.start()
    outcomes = [results.get(timeout=3600) for _ in workers]
    for w in workers:
        w.join()
    seconds = time.perf_counter() - started
    overlapped = night is not None and night.poll() is None  # still learning when the writers finished
    if night is not None:
        night.wait()
    with Agent.open(home, model=model) as bot:
        present = {("turn", t.id) for t in bot.log()} | {("experience", e.id) for e in bot.memories()} | \
                  {("feedback", f.id) for f in bot.list_feedback()}
    writes = [w for o in outcomes for w in o["done"]]
    latencies = sorted(x for o in outcomes for x in o["latencies"])
    return {"learning": learning, "night_still_running_at_end": overlapped, "writers": len(kinds),
            "attempted": rounds * len(kinds), "failures": sum(len(o["failed"]) for o in outcomes),
            "lost": sum(w not in present for w in writes), "seconds": round(seconds, 1),
            "p50_s": round(latencies[len(latencies) // 2], 2), "max_s": round(latencies[-1], 2),
            "errors": [e for o in outcomes for e in o["failed"]][:5],
            "night_exit": None if night is None else night.returncode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--models-dir", type=Path, help="converted base models (default: HOME/models)")
    parser.add_argument("--rounds", type=int, default=8, help="writes per writer")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    console = Console()
    if args.models_dir:
        os.environ["REVERIE_MODELS_DIR"] = str(args.models_dir)
    rows = []
    for learning in (False, True):
        with tempfile.TemporaryDirectory() as home:
            from agent import Agent

            with Agent.open(home, model=args.model) as bot:
                bot.teach_many(["My brother Teodor works in Port Halvik.", "Our cat Pimento eats only salmon."])
            console.print(f"writers {'while a night learns' if learning else 'alone'} ...")
            rows.append(trial(home, args.model, args.rounds, learning, console))
    table = Table("", "writes", "failed", "lost", "p50 (s)", "slowest (s)", "wall (s)", box=None, header_style="bold")
    for r in rows:
        table.add_row("during a learn" if r["learning"] else "alone", str(r["attempted"]), str(r["failures"]),
                      str(r["lost"]), str(r["p50_s"]), str(r["max_s"]), str(r["seconds"]))
    console.print(table)
    report = {"model": args.model, "rounds": args.rounds, "trials": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
