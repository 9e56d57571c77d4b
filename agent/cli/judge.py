"""`reverie judge code | rank | consistency`: the verifiers on their own (graphs/verify)."""

from __future__ import annotations

from contextlib import contextmanager

import typer
from rich.table import Table

from agent.cli.app import app, err, open_agent, out, print_json, read_text, styled
from agent.progress import shown

judge_app = typer.Typer(help="Judge code, rank options, measure a judge's consistency.", no_args_is_help=True)
app.add_typer(judge_app, name="judge")


@contextmanager
def _pairs_bar(total: int, hidden: bool):
    """A progress bar over comparator calls; yields the callback that advances it."""
    with shown(err, disable=hidden) as progress:
        advance = progress.phase("comparing", total)
        yield lambda: advance(1)


@judge_app.command("code")
def code(
    ctx: typer.Context,
    problem: str = typer.Option(..., "--problem", help="File with the problem statement ('-': stdin)."),
    code_file: str = typer.Option(..., "--code", help="File with the code to judge."),
    reference: str = typer.Option(None, "--reference", help="File with a reference solution (only explains the problem)."),
    language: str = typer.Option("python", "--language", help="Language of the code: python, cpp, java, js, go ..."),
    mode: str = typer.Option("binary", "--mode", help="binary (analyze, then Yes/No), graded (severity score) or plain."),
    samples: int = typer.Option(1, "--samples", help="1: greedy; more: sampled runs at temperature 0.4, averaged."),
    as_json: bool = typer.Option(False, "--json", help="Print the CodeVerdict."),
) -> None:
    """Judge whether code solves a problem, without running it (CodeJudge)."""
    texts = {name: read_text(path) for name, path in (("problem", problem), ("code", code_file)) if path}
    ref = read_text(reference) if reference else None
    with open_agent(ctx) as bot:
        verdict = bot.judge_code(texts["problem"], texts["code"], language=language, reference=ref, mode=mode,
                                 samples=samples)
    if as_json:
        print_json(verdict)
        return
    style = {"yes": "green", "no": "red", "invalid": "yellow"}[verdict.result]
    score = "" if verdict.score is None else f" · score {verdict.score:.2f}"
    out.print(styled(verdict.result, style), f"{score} · {verdict.mode} · {verdict.latency_s:.1f} s"
              + (f" · {verdict.invalid}/{verdict.samples} samples invalid" if verdict.invalid else ""), sep="")
    if verdict.reason:
        out.print(f"invalid: {verdict.reason}", markup=False)
    for item in verdict.inconsistencies:
        out.print(f"- {item['severity']}: {item['inconsistency']}", markup=False)
    if verdict.mode == "binary" and verdict.analysis:
        err.print(verdict.analysis, style="dim", markup=False)


@judge_app.command("rank")
def rank(
    ctx: typer.Context,
    items: list[str] = typer.Argument(..., help="The options to rank (two or more)."),
    instruction: str = typer.Option(..., "--instruction", help="What to rank by, e.g. 'Which city is larger?'."),
    negated: str = typer.Option(None, "--negated", help="The opposite question (default: asks for the worse option)."),
    k: int = typer.Option(3, "--k", help="Subset size of the transitivity figure."),
    as_json: bool = typer.Option(False, "--json", help="Print the Ranking."),
) -> None:
    """Rank options by merge sort on the calibrated pairwise comparator, with its consistency."""
    from graphs.verify.consistency import pairs_needed

    with open_agent(ctx) as bot, _pairs_bar(pairs_needed([items]), as_json) as advance:
        ranking = bot.rank(instruction, items, negated_instruction=negated, k=k, on_pair=advance)
    if as_json:
        print_json(ranking)
        return
    for place, (item, p) in enumerate(zip(ranking.ranked, [*ranking.confidence, None]), 1):
        beats = styled(f"  (beats the next with P = {p:.2f})", "dim") if p is not None else ""
        out.print(f"{place}. {item}", beats, sep="")
    out.print(_figures_table({"raw": ranking.raw, "calibrated": ranking.calibrated}))
    err.print(f"{ranking.comparisons} comparisons by merge sort; every pair asked for the figures", style="dim")


@judge_app.command("consistency")
def consistency(
    ctx: typer.Context,
    file: str = typer.Argument(..., help="JSONL: {instruction, items, negated_instruction?, true_order?, id?} per line."),
    k: int = typer.Option(3, "--k", help="Subset size of the transitivity figure."),
    as_json: bool = typer.Option(False, "--json", help="Print the report."),
) -> None:
    """Transitivity, commutativity and negation invariance of the comparator, per set and overall."""
    from graphs.verify.consistency import pairs_needed, read_sets

    sets = read_sets(read_text(file).splitlines(), file)
    with open_agent(ctx) as bot, _pairs_bar(pairs_needed(sets), as_json) as advance:
        report = bot.consistency(sets, k=k, on_pair=advance)
    if as_json:
        print_json(report)
        return
    rows = {f"{s['id']} {view}": s[view] for s in report["sets"] for view in ("raw", "calibrated")}
    rows |= {f"overall {view}": report["overall"][view] for view in ("raw", "calibrated")}
    out.print(_figures_table(rows))


def _figures_table(rows: dict[str, dict]) -> Table:
    columns = list(dict.fromkeys(key for figures in rows.values() for key in figures))
    table = Table("comparator", *columns)
    for name, figures in rows.items():
        table.add_row(name, *("-" if figures.get(c) is None else f"{figures[c]:.2f}" for c in columns))
    return table
