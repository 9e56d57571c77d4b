"""CodeJudge against execution labels, side by side with a plain Yes/No baseline, in one run.

    python examples/eval_codejudge.py                         # embedded SmolLM2-135M, 4 items per file
    python examples/eval_codejudge.py --model PATH_OR_ID --per-file 0 --samples 3   # all items, sampled

On ../shared/data/codejudge/ (HumanEval-X in five languages, and APPS), each item's program is
judged without running it, by

  binary   CodeJudge "analyze then summarize" (with the reference solution, as the paper's
           default HumanEval setting)
  graded   CodeJudge taxonomy-guided severity score
  plain    "Is this code correct? Yes or No" (the paper's vanilla baseline)

and compared with whether the program passed its tests: Kendall tau-b and Spearman between the
score and the pass label, accuracy (graded counts as "correct" only at 1.0, like the paper's
"== 4"), the invalid rate (invalid verdicts are left out of the correlations, as in the paper,
and counted here so that dropping them cannot flatter a method) and seconds per item.
Items are taken in file order, alternating passed and failed, so small runs stay balanced.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.llm import load_backend  # noqa: E402
from agent.settings import load_settings  # noqa: E402
from graphs.verify.card import code_figures  # noqa: E402
from graphs.verify.codejudge import CodeTask, JudgeConfig, judge_code, language_name  # noqa: E402
from learners.metrics import spearman  # noqa: E402

FILES = ("humaneval_x_python", "humaneval_x_cpp", "humaneval_x_java", "humaneval_x_js", "humaneval_x_go", "apps")


def balanced(items: list[dict], n: int) -> list[dict]:
    """The first ``n`` items alternating passed / failed (all of them when n is 0)."""
    if n <= 0:
        return items
    passed, failed = [i for i in items if i["passed"]], [i for i in items if not i["passed"]]
    picked = [x for pair in zip(passed, failed) for x in pair]
    return (picked + passed[len(picked) // 2 :] + failed[len(picked) // 2 :])[:n]


def figures(rows: list[dict]) -> dict:
    """The card's figures (``graphs.verify.card.code_figures``), with Spearman and invalid-as-wrong."""
    valid = [r for r in rows if r["score"] is not None]
    scores, labels = [r["score"] for r in valid], [float(r["passed"]) for r in valid]
    return {
        **code_figures(rows),
        "spearman": spearman(scores, labels) if len(valid) > 1 else None,
        "accuracy_invalid_as_wrong": round(sum((r["result"] == "yes") == r["passed"] for r in valid) / len(rows), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--models-dir", type=Path, help="converted base models (default: HOME/models)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "codejudge")
    parser.add_argument("--files", default=",".join(FILES), help="comma-separated file stems")
    parser.add_argument("--per-file", type=int, default=4, help="items per file; 0 = all")
    parser.add_argument("--methods", default="binary,graded,plain")
    parser.add_argument("--samples", type=int, default=1, help="1 = greedy; the paper: 3 at temperature 0.4")
    parser.add_argument("--analysis-tokens", type=int, default=JudgeConfig.analysis_tokens)
    parser.add_argument("--no-reference", action="store_true", help="judge without the reference solution")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, default=ROOT / "examples" / "results" / "codejudge.json")
    args = parser.parse_args()
    console = Console(stderr=True)

    settings = load_settings(model=args.model, **({"models_dir": args.models_dir} if args.models_dir else {}))
    backend = load_backend(args.model, models_dir=settings.models_path, device=args.device)
    config = JudgeConfig(samples=args.samples, analysis_tokens=args.analysis_tokens)
    methods = args.methods.split(",")
    items = [item for stem in args.files.split(",")
             for item in balanced([json.loads(line) for line in (args.data / f"{stem}.jsonl").open()], args.per_file)]

    rows: dict[str, list[dict]] = {m: [] for m in methods}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("judging", total=len(items) * len(methods))
        for item in items:
            task = CodeTask(item["problem"], item["code"], language_name(item["language"]), item.get("examples") or "",
                            None if args.no_reference else item.get("reference"))
            for method in methods:
                progress.update(bar, description=f"{method} {item['id']}")
                verdict = judge_code(backend, task, method, config)
                rows[method].append({"id": item["id"], "passed": item["passed"], "result": verdict.result,
                                     "score": verdict.score, "latency_s": verdict.latency_s})
                progress.advance(bar)

    report = {
        "model": args.model, "samples": args.samples, "analysis_tokens": args.analysis_tokens,
        "reference": not args.no_reference, "per_file": args.per_file, "files": args.files.split(","),
        "passed_share": round(statistics.mean(i["passed"] for i in items), 3),
        "methods": {m: figures(rows[m]) for m in methods},
        "by_language": {m: {stem: figures([r for r in rows[m] if r["id"].startswith(_prefix(stem))])
                            for stem in args.files.split(",")} for m in methods},
        "items": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")

    table = Table("method", "tau-b", "spearman", "accuracy", "acc. (invalid = wrong)", "invalid", "s/item",
                  title=f"CodeJudge, {args.model}: {len(items)} items")
    for m in methods:
        f = report["methods"][m]
        table.add_row(m, *(_cell(f[k]) for k in ("kendall_tau", "spearman", "accuracy", "accuracy_invalid_as_wrong",
                                                 "invalid_rate", "s_per_item")))
    Console().print(table)
    console.print(f"[dim]{report['passed_share']:.0%} of the items passed their tests; wrote {args.json}[/dim]")


def _prefix(stem: str) -> str:
    return "apps-" if stem == "apps" else stem.replace("humaneval_x_", "humanevalx-") + "-"


def _cell(value) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()
