"""Source-Aware Cleaning against the voting cleaners, on preference pairs with planted flips.

    python examples/eval_sac.py                        # scripted committee + the embedded model's committee
    python examples/eval_sac.py --skip model           # the scripted committee only (seconds)
    python examples/eval_sac.py --model PATH_OR_ID     # another model as the committee's judge

On ../shared/data/preferences/prefs_dev.jsonl (30 pairs: 24 clear ones, 6 of them with the label
flipped, 3 subjective, 3 where both answers are bad; raters of different reliability), every
pair is imported as the rater labelled it and cleaned by each method, with

  (a) a scripted committee: 5 members that each know the better answer with probability
      --accuracy, split at random on subjective pairs, and call both answers bad on both-bad
      pairs with the same probability. It checks what the rules do with a committee of known
      quality (scripted: no model);
  (b) the real default committee on the model: the model as a calibrated pairwise judge under
      three criteria (helpful, correct, harmless) and CodeJudge on code answers.

Reported per method: precision and recall of the flips (on the clear pairs, the only ones
with a ground truth), the share removed (and of the both-bad pairs removed), and the accuracy
of the labels that remain against the truth, beside the raw labels' accuracy. Each committee is
first measured on the card's labelled pairs (``agent.judges``): below
``judges.min_committee_accuracy`` it only audits, and the labels stay as given; the table also
shows the accuracy the labels would have had, had its proposals been applied.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent import Agent  # noqa: E402
from graphs.committee import CallableMember  # noqa: E402
from learners.sac import METHODS  # noqa: E402


def as_trl(row: dict) -> str:
    a, b = row["response_a"], row["response_b"]
    chosen, rejected = (a, b) if row["noisy_label"] == "a" else (b, a)
    return json.dumps({"prompt": row["prompt"], "chosen": chosen, "rejected": rejected, "source": row["source"]})


def scripted(pairs: list[dict], members: int, accuracy: float, seed: int) -> list[CallableMember]:
    """Members right about each pair with probability ``accuracy`` (one draw per member and pair),
    and about each answer on its own with the same probability (one draw per member and answer)."""
    rng = random.Random(seed)
    truth = {}
    for r in pairs:
        better = r["response_a"] if r["true_label"] == "a" else r["response_b"]
        for answer in (r["response_a"], r["response_b"]):
            truth[answer] = (r, answer == better)
    draws = {(k, key): rng.random() for k in range(members) for key in [*truth, *(r["id"] for r in pairs)]}

    def member(k: int) -> CallableMember:
        def score(prompt, answer):
            r, is_better = truth[answer]
            if r["subjective"]:
                return draws[(k, answer)]  # taste: a coin per member and answer
            right = draws[(k, r["id"])] < accuracy
            return float(is_better == right)

        def good(prompt, answer):
            r, is_better = truth[answer]
            if r["both_bad"]:
                return draws[(k, answer)] >= accuracy  # "bad", when right
            return is_better or r["subjective"] or draws[(k, answer)] >= accuracy

        return CallableMember(f"scripted-{k}", score, good)

    return [member(k) for k in range(members)]


def figures(pairs: list[dict], report, ids: dict[str, int], key: str = "action") -> dict:
    """The labels after cleaning (``key`` "action": as applied; "proposed": as the committee proposed)."""
    actions = {i["feedback_id"]: i[key] for i in report.items}
    clear = [r for r in pairs if not r["subjective"] and not r["both_bad"]]
    flipped = [r for r in clear if actions[ids[r["id"]]] == "flip"]
    true_flips = [r for r in flipped if r["planted_flip"]]
    kept = [r for r in clear if actions[ids[r["id"]]] != "remove"]
    right = [r for r in kept if (r["noisy_label"] == r["true_label"]) != (actions[ids[r["id"]]] == "flip")]
    planted = sum(r["planted_flip"] for r in clear)
    both_bad = [r for r in pairs if r["both_bad"]]
    return {
        "flip_precision": round(len(true_flips) / len(flipped), 3) if flipped else None,
        "flip_recall": round(len(true_flips) / planted, 3),
        "removed": round(sum(a == "remove" for a in actions.values()) / len(pairs), 3),
        "both_bad_removed": round(sum(actions[ids[r["id"]]] == "remove" for r in both_bad) / len(both_bad), 3),
        "clear_kept": len(kept),
        "accuracy": round(len(right) / len(kept), 3) if kept else None,
        "flips_by_source": {s: sum(r["source"] == s for r in flipped) for s in sorted({r["source"] for r in pairs})},
    }


def run(pairs, members, label: str, console: Console, model: str | None, models_dir: Path | None) -> dict:
    with tempfile.TemporaryDirectory() as home:
        overrides = {**({"model": model} if model else {}), **({"models_dir": models_dir} if models_dir else {})}
        with Agent.open(home, **overrides) as bot:
            imported = bot.import_feedback([as_trl(r) for r in pairs])
            ids = {r["id"]: imported["imported"][n]["feedback_id"] for n, r in enumerate(pairs)}
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            results = {}
            with Progress(*columns, console=console, transient=True) as progress:
                for method in METHODS:
                    task = progress.add_task(f"{label}: {method}", total=len(pairs))
                    report = bot.clean_feedback(method, members=members(bot),
                                                on_item=lambda t=task: progress.advance(t))
                    results[method] = {**figures(pairs, report, ids), "member_calls": report.member_calls,
                                       "mode": report.mode, "mode_reason": report.mode_reason,
                                       "proposed": figures(pairs, report, ids, "proposed")}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="the committee's model (default: the embedded one)")
    parser.add_argument("--models-dir", type=Path, help="converted base models and their cards (default: a temp home's)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "preferences" / "prefs_dev.jsonl")
    parser.add_argument("--members", type=int, default=5, help="size of the scripted committee")
    parser.add_argument("--accuracy", type=float, default=0.8, help="how often a scripted member is right")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", nargs="*", default=[], choices=("scripted", "model"))
    parser.add_argument("--json", type=Path, default=ROOT / "examples" / "results" / "sac.json")
    args = parser.parse_args()
    console = Console(stderr=True)
    pairs = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
    clear = [r for r in pairs if not r["subjective"] and not r["both_bad"]]
    raw_accuracy = round(sum(r["noisy_label"] == r["true_label"] for r in clear) / len(clear), 3)

    report = {"pairs": len(pairs), "raw_accuracy": raw_accuracy, "committees": {}}
    if "scripted" not in args.skip:
        members = scripted(pairs, args.members, args.accuracy, args.seed)
        report["committees"]["scripted"] = {
            "members": args.members, "accuracy": args.accuracy,
            "methods": run(pairs, lambda bot: members, "scripted", console, args.model, args.models_dir)}
    if "model" not in args.skip:
        report["committees"]["model"] = {
            "model": args.model or "embedded:smollm2-135m-instruct",
            "methods": run(pairs, lambda bot: None, "model committee", console, args.model, args.models_dir)}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")

    table = Table("committee", "method", "mode", "flip precision", "flip recall", "removed", "both-bad removed",
                  "accuracy of kept labels", "clear kept", "accuracy, had it applied",
                  title=f"Cleaning {len(pairs)} pairs (raw labels: {raw_accuracy:.2f} right)")
    for name, committee in report["committees"].items():
        for method, f in committee["methods"].items():
            table.add_row(name, method, f["mode"], *(("-" if f[k] is None else f"{f[k]:.2f}") for k in
                          ("flip_precision", "flip_recall", "removed", "both_bad_removed", "accuracy")),
                          str(f["clear_kept"]), "-" if f["proposed"]["accuracy"] is None else f"{f['proposed']['accuracy']:.2f}")
    Console().print(table)
    for name, committee in report["committees"].items():
        console.print(f"{name}: {next(iter(committee['methods'].values()))['mode_reason']}", markup=False)
    console.print(f"[dim]wrote {args.json}[/dim]")


if __name__ == "__main__":
    main()
