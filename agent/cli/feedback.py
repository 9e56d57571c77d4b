"""`reverie feedback`: give feedback on a turn, import preference datasets, clean the log with
the committee (SAC or a voting cleaner), and list, show or export it.

`reverie feedback TURN_ID --up` is short for `reverie feedback add TURN_ID --up`.
"""

from __future__ import annotations

import json

import typer
from rich.table import Table
from typer.core import TyperGroup

from agent.cli.app import app, err, open_agent, out, output_file, print_json, read_text, styled, write_output
from agent.errors import InvalidInput
from agent.progress import shown


class _TurnFirst(TyperGroup):
    """Route `feedback 12 --up` to `feedback add 12 --up`."""

    def parse_args(self, ctx, args):
        if args and args[0].isdigit():
            args = ["add", *args]
        return super().parse_args(ctx, args)


feedback_app = typer.Typer(cls=_TurnFirst, no_args_is_help=True,
                           help="Give, import, clean, list and export feedback.")
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("add")
def add(
    ctx: typer.Context,
    turn_id: int = typer.Argument(..., min=1, help="An assistant turn id (see `reverie log`)."),
    up: bool = typer.Option(False, "--up", help="The answer was good."),
    down: bool = typer.Option(False, "--down", help="The answer was bad."),
    fix: str = typer.Option(None, "--fix", help="The right answer (also remembered)."),
    better: str = typer.Option(None, "--better", help="A better answer than this one (a preference)."),
    comment: str = typer.Option(None, "--comment", help="Free text; alone, or why (with --up or --down)."),
    user: str = typer.Option(None, "--user", help="Who gives it (default: the turn's user)."),
    as_json: bool = typer.Option(False, "--json", help="Print the Feedback."),
) -> None:
    """Rate an answer, correct it, prefer another answer to it, or comment on it."""
    chosen = [name for name, given in (("--up", up), ("--down", down), ("--fix", fix is not None),
                                       ("--better", better is not None)) if given]
    if len(chosen) > 1 or (not chosen and comment is None):
        raise InvalidInput("give one of --up, --down, --fix TEXT, --better TEXT or --comment TEXT")
    if comment is not None and chosen and chosen[0] in ("--fix", "--better"):
        raise InvalidInput("--comment goes alone or with --up or --down")
    kind = {"--up": "up", "--down": "down", "--fix": "correction", "--better": "preference"}.get(
        chosen[0] if chosen else "", "comment")
    payload = {"better": better} if better is not None else None
    with open_agent(ctx) as bot:
        recorded = bot.feedback(turn_id, kind, text=fix if fix is not None else comment, payload=payload, user=user)
    if as_json:
        print_json(recorded)
    else:
        err.print(f"feedback {recorded.id} ({recorded.kind}) recorded on turn {turn_id}")


@feedback_app.command("import")
def import_(
    ctx: typer.Context,
    file: str = typer.Argument(..., help="JSONL preference dataset ('-': stdin)."),
    fmt: str = typer.Option("trl", "--format", help="trl (prompt/chosen/rejected, or messages) or hh (HH-RLHF text)."),
    user: str = typer.Option("default", "--user", help="Whose feedback it becomes."),
    source: str = typer.Option(None, "--source", help="Who gave it (default: the line's 'source', else 'import')."),
    as_json: bool = typer.Option(False, "--json", help="Print which feedback id each line became, and the bad lines."),
) -> None:
    """Import preference pairs; malformed lines are reported with their numbers, the rest imported."""
    lines = read_text(file).splitlines()
    with open_agent(ctx) as bot:
        report = bot.import_feedback(lines, fmt, user=user, source=source)
    refused = report["errors"]
    if as_json:
        print_json(report)
        if refused and not report["imported"]:
            raise typer.Exit(2)
        return
    if refused and not report["imported"]:  # nothing kept: a failure, said in one line
        reasons = "; ".join(f"line {bad['line']}: {bad['reason']}" for bad in refused[:3])
        raise InvalidInput(f"imported nothing: {len(refused)} line(s) refused ({reasons}{'; ...' if len(refused) > 3 else ''})")
    for bad in refused:  # some kept: a report of the others, line by line
        err.print(f"line {bad['line']}: {bad['reason']}")
    err.print(f"imported {len(report['imported'])} preference pair(s); {len(refused)} line(s) refused")


@feedback_app.command("clean")
def clean(
    ctx: typer.Context,
    method: str = typer.Option(None, "--method", help="sac, vote_all_r, vote_all_f, vote_maj_r or vote_maj_f "
                               "(default: the clean_method setting, sac)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Decide and show, but write no new view."),
    as_json: bool = typer.Option(False, "--json", help="Print the CleaningReport (every decision, votes, reason)."),
) -> None:
    """Clean the feedback with the committee into a new version of the cleaned view."""
    with open_agent(ctx) as bot:
        method = method or bot.settings.clean_method
        total = bot.feedback_to_clean(method)
        with shown(err, disable=as_json) as progress:
            advance = progress.phase("judging", total)
            report = bot.clean_feedback(method, dry_run=dry_run, on_item=lambda: advance(1), progress=progress)
    if as_json:
        print_json(report)
        return
    out.print(f"mode: {report.mode} · {report.mode_reason}", markup=False)
    if report.mode == "audit" and report.proposed != report.counts:
        out.print(f"the committee proposed {report.proposed['flip']} flip(s) and {report.proposed['remove']} "
                  "removal(s); recorded, not applied", markup=False)
    if report.up_to_date:
        out.print(f"nothing new since view {report.run_id} ({method}); its decisions:")
    table = Table("by source of unreliability", "keep", "flip", "remove", title=f"{method}: {len(report.items)} item(s)")
    for category, counts in sorted(report.by_category.items()):
        table.add_row(category, *(str(counts.get(a, 0)) for a in ("keep", "flip", "remove")))
    table.add_row(styled("all", "bold"), *(str(report.counts[a]) for a in ("keep", "flip", "remove")))
    out.print(table)
    sources = Table("by who gave it", "keep", "flip", "remove")
    for source, counts in sorted(report.by_source.items()):
        sources.add_row(source, *(str(counts.get(a, 0)) for a in ("keep", "flip", "remove")))
    out.print(sources)
    where = "dry run: nothing written" if report.dry_run else f"view {report.run_id}"
    err.print(f"{where} · {report.judged} judged, {report.reused} carried over · "
              f"{report.member_calls} member judgements computed (the rest cached)", style="dim")


@feedback_app.command("list")
def list_(
    ctx: typer.Context,
    user: str = typer.Option(None, "--user", help="Only this user's feedback."),
    kind: str = typer.Option(None, "--kind", help="Only this kind: up, down, correction, preference, comment."),
    as_json: bool = typer.Option(False, "--json", help='Print {"feedback": [...]}.'),
) -> None:
    """All feedback as given (cleaning never changes it)."""
    with open_agent(ctx) as bot:
        found = bot.list_feedback(user=user, kind=kind)
    if as_json:
        print_json({"feedback": found})
        return
    table = Table("id", "kind", "turn", "source", "user", "what", box=None, header_style="bold")
    for f in found:
        payload = f.payload or {}
        what = payload.get("text") or (f"chosen: {payload.get('chosen', '')[:40]}" if f.kind == "preference" else "")
        table.add_row(str(f.id), f.kind, str(f.turn_id or "-"), f.source, f.user, what)
    out.print(table)


@feedback_app.command("show")
def show(
    ctx: typer.Context,
    feedback_id: int = typer.Argument(..., min=1, help="A feedback id (see `reverie feedback list`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the feedback and its decisions."),
) -> None:
    """One piece of feedback, and what each cleaning run decided about it."""
    with open_agent(ctx) as bot:
        found = bot.show_feedback(feedback_id)
    if as_json:
        print_json(found)
        return
    f = found["feedback"]
    out.print(f"feedback {f.id} · {f.kind} · turn {f.turn_id or '-'} · {f.source} · {f.user} · {f.created_at[:16]}")
    out.print(json.dumps(f.payload, ensure_ascii=False, indent=1) if f.payload else "(no payload)", markup=False)
    for d in found["decisions"]:
        out.print(f"view {d['run_id']} ({d['method']}): {d['action']} · {d['category']} · {d['reason']}", markup=False)


@feedback_app.command("export")
def export(
    ctx: typer.Context,
    cleaned: bool = typer.Option(False, "--cleaned", help="The newest cleaned view (flips applied, removals left out)."),
    repaired: bool = typer.Option(False, "--repair", help="Per prompt, every pair of the REPAIR win-loss order "
                                                          "(transitive and complete)."),
    fmt: str = typer.Option("trl", "--format", help="trl: one {prompt, chosen, rejected} message-list row per line."),
    output: str = typer.Option(None, "-o", "--output", help="Write to FILE (default: stdout)."),
) -> None:
    """Preference pairs as TRL-compatible JSONL."""
    if fmt != "trl":
        raise InvalidInput(f"unknown export format {fmt!r}; use trl")
    target = output_file(output) if output else None
    with open_agent(ctx) as bot:
        rows = bot.export_feedback(cleaned=cleaned, repaired=repaired)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if target is not None:
        write_output(target, lambda path: path.write_text(text, encoding="utf-8"))
        err.print(f"wrote {len(rows)} pair(s) to {target}")
    else:
        out.file.write(text)
