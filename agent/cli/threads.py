"""`reverie threads list` and `reverie threads repair ID`: the conversations, and a way forward
when one's saved state cannot be read."""

from __future__ import annotations

import typer
from rich.table import Table

from agent.cli.app import app, err, open_agent, out, print_json

threads_app = typer.Typer(help="List conversations; rebuild one's saved state from the log.", no_args_is_help=True)
app.add_typer(threads_app, name="threads")


@threads_app.command("list")
def list_(
    ctx: typer.Context,
    user: str = typer.Option(None, "--user", help="Only this user's threads."),
    as_json: bool = typer.Option(False, "--json", help='Print {"threads": [...]}.'),
) -> None:
    """Every thread, oldest first."""
    with open_agent(ctx) as bot:
        found = bot.threads(user=user)
    if as_json:
        print_json({"threads": found})
        return
    table = Table("thread", "user", "started", box=None, header_style="bold")
    for t in found:
        table.add_row(t.id, t.user, t.created_at[:16].replace("T", " "))
    out.print(table if found else "no threads yet")


@threads_app.command()
def repair(
    ctx: typer.Context,
    thread_id: str = typer.Argument(..., help="The thread whose saved conversation is damaged or missing."),
    as_json: bool = typer.Option(False, "--json", help='Print {"thread_id": ..., "messages": N}.'),
) -> None:
    """Rebuild a thread's saved conversation from the log (every answered turn, in order)."""
    with open_agent(ctx) as bot:
        count = bot.repair_thread(thread_id)
    if as_json:
        print_json({"thread_id": thread_id, "messages": count})
        return
    err.print(f"thread {thread_id} rebuilt from the log: {count} message(s)")
