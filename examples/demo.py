"""`make demo`: a scripted tour of reverie on the embedded model, through the real `reverie` command.

    python examples/demo.py [--model SPEC]

The whole loop: it teaches a few facts, answers questions in new threads by recalling them (and
from the weights alone, to show the difference), rates an answer, consolidates the day into a new
model version overnight (`reverie learn`: SELF-PARAM, evaluation, the gate), asks the same
questions again with recall off, and shows the retention table and plot; then it checks its own
judgement (a pick between options, and a ranking, with their consistency).
Everything lives in .demo/ (the converted model in .demo/models is kept between runs; the rest
starts afresh). The answers are the 135M model's own: small, sometimes odd, never scripted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / ".demo"
console = Console(highlight=False)

FACTS = [
    "My sister Ines lives in Lisbon and repairs violins for a living.",
    "Our weekly planning meeting is on Thursdays at 10:00 in the Orchid room.",
    "My cat Biscuit only eats salmon-flavoured food.",
]
QUESTIONS = ["Where does my sister Ines live?", "What does my cat Biscuit eat?"]


def reverie(*args: str, model: str, show: bool = True) -> str:
    """Run one reverie command as a user would type it; print it and what it says."""
    if show:
        printable = " ".join(f'"{a}"' if " " in a else a for a in args)
        console.print(f"\n[bold cyan]$ reverie {printable}[/bold cyan]")
    env = {**os.environ, "REVERIE_HOME": str(HOME), "REVERIE_MODELS_DIR": str(HOME / "models")}
    exe = Path(sys.executable).with_name("reverie")
    result = subprocess.run([str(exe), "--model", model, *args], capture_output=True, text=True, env=env)
    if show:
        console.print(result.stdout.rstrip(), markup=False)
        if result.stderr.strip():
            console.print(result.stderr.rstrip(), style="dim", markup=False)
    if result.returncode != 0:
        raise SystemExit(f"`reverie {' '.join(args)}` failed with exit code {result.returncode}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    args = parser.parse_args()
    model = args.model

    HOME.mkdir(exist_ok=True)
    for entry in HOME.iterdir():  # a fresh start, but keep the converted model
        if entry.name != "models":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()

    console.rule("1. The model knows general things on its own")
    reverie("ask", "What is the capital of France?", model=model)

    console.rule("2. Teach it about your life")
    for fact in FACTS:
        reverie("teach", fact, model=model)

    console.rule("3. New threads recall what was taught")
    reverie("ask", "Where does my sister Ines live?", model=model)
    reply = json.loads(reverie("ask", "When is the weekly planning meeting?", "--json", model=model, show=False))
    console.print('\n[bold cyan]$ reverie ask "When is the weekly planning meeting?" --json[/bold cyan]')
    console.print_json(json.dumps({k: reply[k] for k in ("turn_id", "thread_id", "text", "memories", "model_version")}))

    console.rule("4. Without recall, the weights alone do not know it (yet)")
    reverie("ask", "Where does my sister Ines live?", "--no-recall", model=model)

    console.rule("5. Feedback is stored against the turn it rates")
    reverie("feedback", str(reply["turn_id"]), "--up", "--comment", "exactly right", model=model)

    console.rule("6. Everything is logged; a statement made in chat is remembered too")
    reverie("ask", "I started learning the cello with Mrs Okafor last month.", model=model)
    reverie("log", "--limit", "4", model=model)
    reverie("memory", "search", "what does my cat eat", model=model)

    console.rule("7. Overnight: fold the day into the weights (SELF-PARAM), evaluate, gate")
    reverie("learn", model=model)
    reverie("models", "list", model=model)

    console.rule("8. The same questions from the weights alone, recall off")
    for question in QUESTIONS:
        reverie("ask", question, "--no-recall", model=model)

    console.rule("9. Retention: per experience, per version, by age in nights")
    reverie("retention", "--plot", str(HOME / "retention.png"), model=model)
    reverie("memory", "list", model=model)

    console.rule("10. It checks its own judgements: order, negation, transitivity")
    reverie("ask", "Which is better for a beginner to learn first: Python, Java or C++?", model=model)
    reverie("judge", "rank", "--instruction", "Which number is larger?", "--", "7", "300", "42", model=model)
    console.print(f"\n[dim]demo data: {HOME} (try: REVERIE_HOME={HOME} reverie chat)[/dim]")


if __name__ == "__main__":
    main()
