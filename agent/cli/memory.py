"""`reverie teach` and `reverie memory list | search | forget | export | reindex`."""

from __future__ import annotations

import typer
from rich.table import Table

from agent.cli.app import app, err, open_agent, out, output_file, print_json, read_text, write_output
from agent.errors import InvalidInput

memory_app = typer.Typer(help="Look at, search, forget and export what reverie remembers.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")


@app.command()
def teach(
    ctx: typer.Context,
    text: str = typer.Argument(None, help="What to remember."),
    file: str = typer.Option(None, "--file", help="A UTF-8 text file, one experience per line ('-' for stdin)."),
    user: str = typer.Option("default", "--user", help="Whose memory this is."),
    probe: list[str] = typer.Option(None, "--probe", help="QUESTION=ANSWER[|ANSWER...] that tests whether it "
                                    "was learned (repeatable; never trained on). Default: learn writes its own."),
    as_json: bool = typer.Option(False, "--json", help='Print {"experience_ids": [...]}.'),
) -> None:
    """Remember something. With --file, every non-empty line is one experience, all or none."""
    if (text is None) == (file is None):
        raise InvalidInput("give the text to teach, or --file PATH, but not both")
    if probe and file is not None:
        raise InvalidInput("--probe goes with one experience, not with --file")
    texts = [text] if file is None else read_lines(file)
    probes = [[_probe(p) for p in probe]] if probe else None
    with open_agent(ctx) as bot:
        ids = bot.teach_many(texts, user=user, probes=probes)
    if as_json:
        print_json({"experience_ids": ids})
    else:
        err.print(f"remembered {len(ids)} experience{'s' if len(ids) != 1 else ''}: {', '.join(map(str, ids))}")


def _probe(text: str) -> dict:
    question, sep, answers = text.partition("=")
    if not sep or not question.strip() or not answers.strip():
        raise InvalidInput(f"--probe takes QUESTION=ANSWER, got {text!r}")
    return {"question": question.strip(), "answers": [a.strip() for a in answers.split("|") if a.strip()]}


def read_lines(file: str) -> list[str]:
    """Non-empty lines of a UTF-8 text file; a binary or non-UTF-8 file is refused whole."""
    lines = [line.strip() for line in read_text(file).splitlines() if line.strip()]
    if not lines:
        raise InvalidInput(f"{file} has nothing to teach")
    return lines


@memory_app.command("list")
def list_(
    ctx: typer.Context,
    user: str = typer.Option(None, "--user", help="Only this user's memories (default: everyone's)."),
    all_: bool = typer.Option(False, "--all", help="Include forgotten ones."),
    as_json: bool = typer.Option(False, "--json", help='Print {"memories": [...]}.'),
) -> None:
    """List experiences: what was taught, corrected or extracted, and their status."""
    with open_agent(ctx) as bot:
        memories = bot.memories(user=user, include_forgotten=all_)
    if as_json:
        print_json({"memories": memories})
        return
    table = Table("id", "user", "source", "status", "created", "text", box=None, header_style="bold")
    for m in memories:
        table.add_row(str(m.id), m.user, m.source, m.status, m.created_at[:16].replace("T", " "), m.text)
    out.print(table if memories else "no memories yet")


@memory_app.command()
def search(
    ctx: typer.Context,
    query: str = typer.Argument(..., help="What to look for, in plain words."),
    user: str = typer.Option("default", "--user", help="Whose memories to search."),
    k: int = typer.Option(5, "-k", min=1, max=100, help="How many results."),
    turns: bool = typer.Option(False, "--turns", help="Also search what the user said in chats."),
    as_json: bool = typer.Option(False, "--json", help='Print {"hits": [...]}.'),
) -> None:
    """Semantic search over one user's memories."""
    with open_agent(ctx) as bot:
        hits = bot.search(query, user=user, k=k, turns=turns)
    if as_json:
        print_json({"hits": hits})
        return
    table = Table("score", "kind", "id", "text", box=None, header_style="bold")
    for h in hits:
        table.add_row(f"{h.score:.2f}", h.kind, str(h.id), h.text)
    out.print(table if hits else "nothing found")


@memory_app.command()
def forget(
    ctx: typer.Context,
    experience_id: int = typer.Argument(..., min=1, help="The experience id (see `reverie memory list`)."),
    as_json: bool = typer.Option(False, "--json", help="Print what was done: the experience, the new version."),
) -> None:
    """Never recall or learn from an experience again, and take it out of the weights (its record
    stays, marked forgotten; the version served from now on lacks the adapter that held it)."""
    with open_agent(ctx) as bot:
        forgotten = bot.forget(experience_id)
    if as_json:
        print_json(forgotten)
        return
    err.print(f"forgot experience {forgotten.experience.id}")
    if forgotten.version:
        err.print(f"now serving {forgotten.version}, without adapter {', '.join(forgotten.dropped)}"
                  + (f"; experiences {', '.join(map(str, forgotten.relearn))} are recalled until the next "
                     "night learns them again" if forgotten.relearn else ""))


@memory_app.command()
def export(
    ctx: typer.Context,
    user: str = typer.Option(None, "--user", help="Only this user's data (default: everyone's)."),
    output: str = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Export experiences, threads, turns and feedback as one JSON object."""
    target = output_file(output) if output is not None else None
    with open_agent(ctx) as bot:
        data = bot.export(user=user).model_dump_json(indent=2)
    if target is None:
        print(data)
        return
    write_output(target, lambda path: path.write_text(data + "\n", encoding="utf-8"))
    err.print(f"exported to {target}")


@memory_app.command()
def reindex(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help='Print {"indexed": N}.'),
) -> None:
    """Rebuild episodic memory (the search index) from the experience log."""
    with open_agent(ctx) as bot:
        count = bot.reindex()
    if as_json:
        print_json({"indexed": count})
    else:
        err.print(f"indexed {count} entries")
