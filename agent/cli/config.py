"""`reverie config show` and `reverie paths`."""

from __future__ import annotations

import typer
from rich.table import Table

from agent.cli.app import app, open_agent, out, print_json
from agent.cli.models import print_modes
from agent.settings import setting_sources

config_app = typer.Typer(help="Inspect the resolved settings.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command()
def show(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help='Print {"settings": {...}, "sources": {...}}.'),
) -> None:
    """Every setting, its value and where it came from (default, file, env or flag), and what the
    judges do on this model (from its card), with the reason.

    Section settings are named by their dotted key (``selfparam.lr``), as ``--set`` takes them.
    """
    with open_agent(ctx) as bot:
        values = bot.settings.model_dump(mode="json")
        sources = setting_sources(bot.settings, ctx.find_root().obj["overrides"])
        modes = bot.judge_modes().model_dump()
    if as_json:
        print_json({"settings": values, "sources": sources, "judges": modes})
        return
    table = Table("setting", "value", "from", box=None, header_style="bold")
    table.add_row("home", values["home"], "--home, REVERIE_HOME or default")
    for key, origin in sources.items():
        section, dot, name = key.partition(".")
        value = values[section][name] if dot else values[key]
        table.add_row(key, str(value), origin)
    out.print(table)
    print_modes(modes)  # what the auto settings became on this model, and why


@app.command()
def paths(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the paths as one JSON object."),
) -> None:
    """Where reverie keeps everything."""
    with open_agent(ctx) as bot:
        where = bot.paths()
    if as_json:
        print_json(where)
        return
    for name, path in where.items():
        out.print(f"{name:12} {path}")
