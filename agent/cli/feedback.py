"""`reverie feedback TURN_ID --up | --down | --fix TEXT`."""

from __future__ import annotations

import typer

from agent.cli.app import app, err, open_agent, print_json
from agent.errors import InvalidInput


@app.command()
def feedback(
    ctx: typer.Context,
    turn_id: int = typer.Argument(..., help="An assistant turn id (see `reverie log`)."),
    up: bool = typer.Option(False, "--up", help="The answer was good."),
    down: bool = typer.Option(False, "--down", help="The answer was bad."),
    fix: str = typer.Option(None, "--fix", help="The right answer (also remembered)."),
    comment: str = typer.Option(None, "--comment", help="Why, in a few words (with --up or --down)."),
    user: str = typer.Option(None, "--user", help="Who gives it (default: the turn's user)."),
    as_json: bool = typer.Option(False, "--json", help="Print the Feedback."),
) -> None:
    """Rate an answer or correct it."""
    chosen = [name for name, given in (("--up", up), ("--down", down), ("--fix", fix is not None)) if given]
    if len(chosen) != 1:
        raise InvalidInput("give exactly one of --up, --down or --fix TEXT")
    if fix is not None and comment is not None:
        raise InvalidInput("--comment goes with --up or --down; --fix carries its own text")
    kind = "up" if up else "down" if down else "correction"
    with open_agent(ctx) as bot:
        recorded = bot.feedback(turn_id, kind, text=fix if fix is not None else comment, user=user)
    if as_json:
        print_json(recorded)
    else:
        err.print(f"feedback {recorded.id} ({recorded.kind}) recorded on turn {turn_id}")
