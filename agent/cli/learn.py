"""`reverie learn` (consolidate now) and `reverie retention` (what the weights keep, over time)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from agent.cli.app import app, err, open_agent, out, output_file, print_json, styled, write_output
from agent.cli.models import print_modes
from agent.progress import shown


@app.command()
def learn(
    ctx: typer.Context,
    user: str = typer.Option("default", "--user", help="Whose experiences to consolidate."),
    only: str = typer.Option(None, "--only", help="Run only this step of the night: clean, selfparam or cory."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be learned; write nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the LearnReport."),
) -> None:
    """Consolidate new experiences into the weights now (SELF-PARAM), refine the policy (CORY) when a
    reward is configured, evaluate, and promote what passes its gate."""
    with open_agent(ctx) as bot:
        with shown(err, disable=as_json) as progress:
            report = bot.learn(user, dry_run=dry_run, only=only, progress=progress)
    if as_json:
        print_json(report)
        return
    if only != "cory":
        _print_night(report, dry_run)
    if report.refine:
        _print_refine(report.refine)
    for catalogue, tastes in report.tastes.items():
        read = ", ".join(f"{t['value']} ({t['field']}, z {t['z']})" for t in tastes) or "none stands out"
        out.print(f"tastes read from the new weights for catalogue {catalogue}: {read}", markup=False)
    if report.judges:
        print_modes(report.judges)


def _print_night(report, dry_run: bool) -> None:
    if report.cleaning:
        c = report.cleaning
        out.print(f"feedback: {c['judged']} new item(s) cleaned ({c['method']}, {c['mode']}) into view {c['run_id']}: "
                  f"{c['counts']['keep']} kept, {c['counts']['flip']} flipped, {c['counts']['remove']} removed")
        if c["mode"] == "audit":
            out.print(f"  audit only: {c['mode_reason']}", markup=False)
    if report.stop:
        out.print(report.stop)
        return
    if report.extracted:
        out.print(f"from chats: {len(report.extracted)} informative statement(s) "
                  f"{'would become' if dry_run else 'became'} experiences")
    if report.deferred:
        out.print(f"{len(report.deferred)} more new experience(s) wait for a later night (learn.max_new); "
                  "recall answers them meanwhile")
    if report.retried:
        out.print(f"refused on an earlier night, tried again: {', '.join(map(str, report.retried))}")
    if report.parked:
        out.print(f"left to recall after refused nights (learn.max_attempts): {', '.join(map(str, report.parked))}")
    table = Table("experience", "probes set aside", "QA pairs (written + recited)", "rejected", box=None,
                  header_style="bold", title="dry run: what would be learned" if dry_run else "target set")
    for key, s in report.synthesis.items():
        written = sum(1 for p in s.get("pairs", []) if not p["recited"])
        recited = len(s.get("pairs", [])) - written
        table.add_row(key, str(len(s["probes"])), f"{written} + {recited}", str(sum(s.get("rejected", {}).values())))
    out.print(table)
    if dry_run:
        return
    figures, current = report.figures or {}, report.current or {}
    summary = Table("", "candidate " + (report.version or ""), "active " + report.parent, box=None, header_style="bold")
    for key, label in [("efficacy", "efficacy (new, contains)"), ("efficacy_f1", "efficacy (new, QA-F1)"),
                       ("retention", "retention (earlier, contains)"), ("pollution", "near-miss pollution"),
                       ("general_contains", "general questions"), ("perplexity", "chat perplexity")]:
        summary.add_row(label, _fmt(figures.get(key)), _fmt(current.get(key)))
    out.print(summary)
    for name, adapter in figures.get("adapters", {}).items():
        verdict = "kept" if name in report.kept else "dropped"
        again = f" (trained again with the KL alone: {'; '.join(report.retrained[name])})" if name in report.retrained else ""
        out.print(f"{name}: experiences {', '.join(map(str, adapter['experiences']))}, efficacy "
                  f"{_fmt(adapter['efficacy'])}, general {_fmt(adapter['general_contains'])}: {verdict}{again}")
    out.print(f"trained {len(report.new)} new experience(s) into {len(figures.get('adapters', {}))} adapter(s) in "
              f"{report.training['seconds']:.0f} s; whole run {report.seconds:.0f} s")
    if report.promoted:
        out.print(styled(f"promoted {report.version}", "green"), f"; consolidated: {report.consolidated or 'none yet'}",
                  sep="")
    else:
        out.print(styled(f"kept {report.parent}", "yellow"), ": " + "; ".join(report.reasons), sep="")


def _print_refine(refine: dict) -> None:
    if refine.get("stop"):
        out.print(f"refine: {refine['stop']}")
        return
    curve, figures, current = refine["training"]["curve"], refine["figures"], refine["current"]
    table = Table("iteration", "reward (pioneer)", "KL", "reward (observer)", box=None, header_style="bold",
                  title=f"refine (CORY) on {refine['prompts']['train']} prompts, "
                        f"{refine['prompts']['heldout']} held out")
    for row in curve:
        table.add_row(str(row["iteration"]), _fmt(row["reward"]), _fmt(row["kl"]), _fmt(row["observer_reward"]))
    out.print(table)
    summary = Table("", "candidate policy " + (refine["version"] or ""), "served " + (current.get("policy") or
                    "(no policy)"), box=None, header_style="bold")
    for key, label in [("reward", "held-out reward"), ("kl", "KL to the base"), ("retention", "knowledge probes"),
                       ("general_contains", "general questions"), ("perplexity", "chat perplexity")]:
        summary.add_row(label, _fmt(figures.get(key)), _fmt(current.get(key, 0.0 if key == "kl" else None)))
    out.print(summary)
    if refine["promoted"]:
        out.print(styled(f"promoted {refine['version']} (policy refined)", "green"))
    else:
        out.print(styled(f"policy refused ({refine['version']} kept for the record)", "yellow"), ": "
                  + "; ".join(refine["reasons"]), sep="")


@app.command()
def retention(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the retention report."),
    plot: Path = typer.Option(None, "--plot", help="Also draw it to this PNG file."),
) -> None:
    """Probe scores per experience and learn run, and efficacy / retention by age in nights."""
    if plot is not None:
        plot = output_file(plot, suffix=".png")
    with open_agent(ctx) as bot:
        report = bot.retention_report()
    if plot is not None:
        from agent.plots import plot_retention

        write_output(plot, lambda path: plot_retention(report, path))
    if as_json:
        print_json(report)
        return
    if report["refines"]:
        _print_refines(report["refines"])
    if not report["runs"]:
        out.print("no learn runs yet: `reverie learn` consolidates what you taught")
        return
    runs = report["runs"]
    table = Table("experience", *[f"{r['version']}{'' if r['promoted'] else ' ✗'}" for r in runs], box=None,
                  header_style="bold", title='probe "contains" per learn run (✗: refused by the gate)')
    for experience in sorted({p["experience_id"] for p in report["points"]}):
        scores = {p["run_id"]: p["contains"] for p in report["points"] if p["experience_id"] == experience}
        table.add_row(str(experience), *[_fmt(scores.get(r["id"])) for r in runs])
    out.print(table)
    curve = Table("age (nights)", "experiences", "contains", "QA-F1", box=None, header_style="bold",
                  title="promoted versions, by age")
    for p in report["by_age"]:
        curve.add_row(str(p["age"]), str(p["experiences"]), _fmt(p["contains"]), _fmt(p["f1"]))
    out.print(curve)
    if plot is not None:
        err.print(f"wrote {plot}")


def _print_refines(refines: list[dict]) -> None:
    table = Table("version", "user", "iterations", "reward first → last", "KL last", "held-out reward", "served",
                  "", box=None, header_style="bold", title="refined policies (CORY)")
    for r in refines:
        curve = r["curve"]
        table.add_row(r["version"], r["user"], str(len(curve)), f"{_fmt(curve[0]['reward'])} → {_fmt(curve[-1]['reward'])}",
                      _fmt(curve[-1]["kl"]), _fmt(r["figures"]["reward"]), _fmt(r["current"]["reward"]),
                      "promoted" if r["promoted"] else "refused")
    out.print(table)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)
