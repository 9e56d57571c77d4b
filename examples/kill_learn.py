"""SIGKILL `reverie learn` at random moments, again and again, and check what each kill left.

    python examples/kill_learn.py                      # 20 kills, the embedded model
    python examples/kill_learn.py --kills 5 --model PATH

One home is taught a fact a night; two unkilled nights measure how long a night takes. Then
each round starts `reverie learn` and kills it after a random delay within that time (the
moments spread over loading, writing pairs, training, evaluating and recording; a night learns
one new fact at most, so every night is about as long), opens the home
again in a new process and checks: the active version loads and answers; every recorded version
folder is complete (adapter and manifest) and no staging folder is left; no learn run is left
"running"; a promoted version's experiences carry the right status. Each round teaches one more
fact, so every night has something new to learn. Figures go to examples/results/kill_learn.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from agent.progress import steps  # noqa: E402

RESULTS = ROOT / "examples" / "results" / "kill_learn.json"
# After each kill: open the home (which finishes dead runs), and report what it finds.
CHECK = """
import json, sys
from pathlib import Path
from agent import Agent
with Agent.open(sys.argv[1], model=sys.argv[2], max_new_tokens=8) as bot:
    active = bot.active_model()
    reply = bot.chat("Where does Teodor work?", recall=False)
    folder = Path(sys.argv[1]) / "versions"
    recorded = [v for v in bot.versions.list() if v.parent and not v.pruned_at]
    broken = [v.id for v in recorded if not (Path(v.path) / "manifest.json").is_file()
              or not (Path(v.path) / "adapter_config.json").is_file()]
    debris = [p.name for p in folder.iterdir() if p.name.startswith(".staging-")] if folder.is_dir() else []
    held = bot.retention.held_by(active.id)
    wrong_status = [e.id for e in bot.memories() if (e.status == "consolidated") != (e.id in held)]
    runs = bot.retention.runs()
    print(json.dumps({"active": active.id, "answered_by": reply.model_version, "broken": broken, "debris": debris,
                      "wrong_status": wrong_status, "running": [r.id for r in runs if r.status == "running"],
                      "runs": len(runs), "promoted": sum(r.promoted for r in runs)}))
"""
FACTS = ["My brother Teodor works in Port Halvik as a ferry mechanic.", "My grandmother Ysolde plays the bandoneon.",
         "Our cat Pimento eats only salmon.", "The planning meeting is on Thursdays at 10:00.",
         "My sister Ines lives in Lisbon.", "My neighbour Oskar grows black tomatoes."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--models-dir", type=Path, help="converted base models (default: HOME/models)")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3, help="a shorter night than the default, so kills land often")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    console, rng = Console(), random.Random(args.seed)
    exe = str(Path(sys.executable).with_name("reverie"))

    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "REVERIE_HOME": home}
        if args.models_dir:
            env["REVERIE_MODELS_DIR"] = str(args.models_dir)
        # One new fact a night (learn.max_new), so every night takes about as long as the first.
        night = [exe, "--model", args.model, "--set", f"selfparam.epochs={args.epochs}", "--set", "synthesis.samples=1",
                 "--set", "gate.min_efficacy=0", "--set", "learn.max_new=1", "learn"]

        def teach(i: int) -> None:
            subprocess.run([exe, "--model", args.model, "teach", FACTS[i % len(FACTS)] + f" (note {i})"], env=env,
                           check=True, capture_output=True)

        # Two unkilled nights: the first also does once-per-base work (general ability, replay
        # text), so the second one's length is what a kill should fall within.
        for i in range(2):
            teach(i)
            started = time.perf_counter()
            subprocess.run(night, env=env, check=True, capture_output=True)
            span = time.perf_counter() - started
        rounds = []
        for i in steps(range(args.kills), "kill, reopen, check", console=console):
            teach(i + 2)
            delay = rng.uniform(0.5, span * 0.95)  # within a night; one that runs faster may still finish
            process = subprocess.Popen(night, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                process.wait(timeout=delay)  # finished before its kill: a round like any other
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait()
            check = subprocess.run([sys.executable, "-c", CHECK, home, args.model], env=env, capture_output=True,
                                   text=True, cwd=ROOT)
            found = json.loads(check.stdout) if check.returncode == 0 else {"error": check.stderr[-500:]}
            rounds.append({"round": i + 1, "delay_s": round(delay, 1), "killed": process.returncode == -signal.SIGKILL,
                           **found})
        db = sqlite3.connect(Path(home) / "reverie.db")
        statuses = dict(db.execute("SELECT status, COUNT(*) FROM learn_runs GROUP BY status").fetchall())

    corrupt = sum(bool(r.get("broken")) or "error" in r or r.get("answered_by") != r.get("active") for r in rounds)
    report = {"model": args.model, "night_s": round(span, 1), "kills": sum(r["killed"] for r in rounds),
              "rounds": len(rounds), "corrupt_versions": corrupt,
              "unreconciled_runs": sum(len(r.get("running", [])) for r in rounds),
              "staging_debris": sum(len(r.get("debris", [])) for r in rounds),
              "wrong_statuses": sum(len(r.get("wrong_status", [])) for r in rounds),
              "run_statuses": statuses, "details": rounds}
    table = Table("rounds", "killed", "corrupt versions", "runs left running", "staging debris", "wrong statuses",
                  "night (s)", box=None, header_style="bold")
    table.add_row(*(str(report[k]) for k in ("rounds", "kills", "corrupt_versions", "unreconciled_runs",
                                             "staging_debris", "wrong_statuses", "night_s")))
    console.print(table)
    console.print(f"learn runs by status: {statuses}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
