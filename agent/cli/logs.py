"""`reverie log`: every turn, by thread, with the ids feedback needs."""

from __future__ import annotations

from itertools import groupby

import typer
from rich.markup import escape

from agent.cli.app import app, open_agent, out, print_json
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
        out.print(f"[bold]thread {thread_id}[/bold] [dim]({group[0].user}, from {group[0].created_at[:16]})[/dim]")
        for t in group:
            if t.role == "user":
                out.print(f"  [cyan]#{t.id} you[/cyan]  {escape(t.content)}")
            else:
                meta = f"{t.model_version} · {t.latency_s:.1f} s" if t.latency_s is not None else t.model_version
                out.print(f"  [green]#{t.id} reverie[/green] [dim]({meta})[/dim]  {escape(t.content)}")
                for verdict in t.verdicts:
                    out.print(f"      [dim]{escape(verdict_line(verdict))}[/dim]")
