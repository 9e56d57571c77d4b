"""`reverie log`: every turn, by thread, with the ids feedback needs."""

from __future__ import annotations

from itertools import groupby

import typer

from agent.cli.app import app, open_agent, out, print_json, styled
from agent.cli.chat import verdict_line


@app.command("log")
def log_(
    ctx: typer.Context,
    thread: str = typer.Option(None, "--thread", help="Only this thread."),
    user: str = typer.Option(None, "--user", help="Only this user."),
    limit: int = typer.Option(None, "--limit", "-n", min=1, help="Only the most recent N turns."),
    as_json: bool = typer.Option(False, "--json", help='Print {"turns": [...]}.'),
) -> None:
    """Show the conversation log."""
    with open_agent(ctx) as bot:
        turns = bot.log(thread_id=thread, user=user, limit=limit)
    if as_json:
        print_json({"turns": turns})
        return
    if not turns:
        out.print("no turns yet")
        return
    for thread_id, group in groupby(sorted(turns, key=lambda t: (t.thread_id, t.id)), key=lambda t: t.thread_id):
        group = list(group)
        out.print(styled(f"thread {thread_id}", "bold"),
                  styled(f" ({group[0].user}, from {group[0].created_at[:16]})", "dim"), sep="")
        for t in group:
            if t.role == "user":
                out.print(styled(f"  #{t.id} you", "cyan"), "  ", t.content, sep="")
            else:
                meta = f"{t.model_version} · {t.latency_s:.1f} s" if t.latency_s is not None else t.model_version
                out.print(styled(f"  #{t.id} reverie", "green"), styled(f" ({meta})", "dim"), "  ", t.content, sep="")
                for verdict in t.verdicts:
                    out.print(f"      {verdict_line(verdict)}", style="dim")
