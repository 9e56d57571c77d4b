"""`reverie catalogue import | list | show | remove` and `reverie recommend`."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from agent.cli.app import app, err, open_agent, out, print_json, read_text
from agent.errors import InvalidInput
from agent.progress import shown

catalogue_app = typer.Typer(help="The catalogues recommendations draw on (films, books, products...).",
                            no_args_is_help=True)
app.add_typer(catalogue_app, name="catalogue")


@catalogue_app.command("import")
def import_(
    ctx: typer.Context,
    file: str = typer.Argument(..., help='JSONL, one item a line: {"id", "title", any metadata}.'),
    name: str = typer.Option(None, "--name", help="The catalogue's name (default: the file's)."),
    replace: bool = typer.Option(False, "--replace", help="Replace a catalogue of that name."),
    as_json: bool = typer.Option(False, "--json", help="Print the Catalogue."),
) -> None:
    """Import a catalogue: every line, or (on any bad line, named by number) none."""
    with open_agent(ctx) as bot:
        with shown(err, disable=as_json) as progress:
            catalogue = bot.import_catalogue(file, name, replace=replace, progress=progress)
    if as_json:
        print_json(catalogue)
    else:
        err.print(f"imported {catalogue.items} items as catalogue {catalogue.name!r} "
                  f"(fields: {', '.join(catalogue.fields) or 'none'})")


@catalogue_app.command("list")
def list_(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help='Print {"catalogues": [...]}.')) -> None:
    """List the catalogues of this home."""
    with open_agent(ctx) as bot:
        catalogues = bot.catalogues.list()
    if as_json:
        print_json({"catalogues": catalogues})
        return
    table = Table("name", "items", "fields", "imported", "from", box=None, header_style="bold")
    for c in catalogues:
        table.add_row(c.name, str(c.items), ", ".join(c.fields), c.created_at[:16].replace("T", " "), c.source or "")
    out.print(table if catalogues else "no catalogues yet: `reverie catalogue import FILE.jsonl`")


@catalogue_app.command()
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The catalogue."),
    item: str = typer.Option(None, "--item", help="Show this item's every field."),
    limit: int = typer.Option(20, "--limit", min=1, help="Items to list."),
    as_json: bool = typer.Option(False, "--json", help='Print {"catalogue", "items"}.'),
) -> None:
    """A catalogue's first items, or one item."""
    with open_agent(ctx) as bot:
        catalogue = bot.catalogues.get(name)
        items = [bot.catalogues.item(name, item)] if item is not None else bot.catalogues.items(name, limit=limit)
    if as_json:
        print_json({"catalogue": catalogue, "items": items})
        return
    if item is not None:
        out.print(json.dumps({"id": items[0].id, "title": items[0].title, **items[0].fields}, indent=1,
                             ensure_ascii=False))
        return
    out.print(f"{catalogue.name}: {catalogue.items} items")
    shown_fields = [f for f in catalogue.fields if f not in ("description", "uri")][:5]
    table = Table("id", "title", *shown_fields, box=None, header_style="bold")
    for i in items:
        table.add_row(i.id, i.title, *[_short(i.fields.get(f)) for f in shown_fields])
    out.print(table)


@catalogue_app.command()
def remove(ctx: typer.Context, name: str = typer.Argument(..., help="The catalogue."),
           as_json: bool = typer.Option(False, "--json", help="Print the removed Catalogue.")) -> None:
    """Remove a catalogue and its index."""
    with open_agent(ctx) as bot:
        catalogue = bot.catalogues.remove(name)
    print_json(catalogue) if as_json else err.print(f"removed catalogue {catalogue.name!r} ({catalogue.items} items)")


@app.command()
def recommend(
    ctx: typer.Context,
    text: str = typer.Argument(None, help="What the user asks for (one message)."),
    file: str = typer.Option(None, "--file", help='A conversation, JSON: [{"role", "content"}...] or {"messages": '
                             '[...]} (or "turns").'),
    thread: str = typer.Option(None, "--thread", help="Recommend for a logged thread."),
    catalogue: str = typer.Option(None, "--catalogue", help="Which catalogue (default: [recommend] catalogue, or "
                                  "the only one)."),
    k: int = typer.Option(None, "-k", min=1, max=100, help="How many items (default: [recommend] k)."),
    user: str = typer.Option("default", "--user", help="Whose tastes to recall."),
    no_recall: bool = typer.Option(False, "--no-recall", help="Recall no memories: only the weights know the user."),
    as_json: bool = typer.Option(False, "--json", help="Print the Recommendation."),
) -> None:
    """Recommend items of a catalogue for a conversation, each with a reason. Stated constraints
    (genres, years, length, rating, language, titles already seen) are never violated."""
    if sum(x is not None for x in (text, file, thread)) != 1:
        raise InvalidInput("give the request as TEXT, --file CONVERSATION.json or --thread ID (one of them)")
    messages = [{"role": "user", "content": text}] if text is not None else _conversation(file) if file else None
    with open_agent(ctx) as bot:
        result = bot.recommend(messages, thread_id=thread, catalogue=catalogue, k=k, user=user,
                               recall=False if no_recall else None,
                               on_status=None if as_json else lambda s: err.print(s, style="dim"))
    if as_json:
        print_json(result)
        return
    if result.constraints:
        err.print("asked: " + "; ".join(f"{key} {value}" for key, value in result.constraints.items()), style="dim")
    table = Table("#", "id", "title", "why", box=None, header_style="bold")
    for n, pick in enumerate(result.items, 1):
        table.add_row(str(n), pick.id, pick.title, pick.reason)
    out.print(table if result.items else "nothing in the catalogue meets everything asked")
    if result.note:
        err.print(result.note)
    err.print(f"ranked by {result.ranking['method']}: {result.ranking['reason']}", style="dim")


def _conversation(file: str) -> list:
    try:
        data = json.loads(read_text(file))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{file} is not JSON: {exc.msg} (line {exc.lineno})") from exc
    messages = data.get("messages", data.get("turns")) if isinstance(data, dict) else data
    if not isinstance(messages, list):
        raise InvalidInput(f'{file} holds no conversation: a list of messages, or {{"messages": [...]}}')
    return messages


def _short(value) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list) else "" if value is None else str(value)
    return text if len(text) <= 40 else text[:39] + "…"
