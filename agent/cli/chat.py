"""`reverie chat` (interactive or piped) and `reverie ask` (one question).

The answer goes to stdout; a one-line summary of the turn (ids, model, time, tokens, recalled
memories) goes to stderr, so `reverie ask ... > answer.txt` keeps only the answer.
"""

from __future__ import annotations

import sys

import typer

from agent.cli.app import app, err, open_agent, out, print_json, visible
from agent.errors import ReverieError

HELP = """/good            the last answer was good
/bad             the last answer was bad
/fix TEXT        the right answer was TEXT (remembered, and recalled from now on)
/better TEXT     TEXT would have been a better answer (a preference)
/comment TEXT    say something about the last answer
/remember TEXT   remember TEXT
/new             start a new thread
/quit            leave (so does Ctrl-D)"""


@app.command()
def ask(
    ctx: typer.Context,
    text: str = typer.Argument(..., help="The message."),
    thread: str = typer.Option(None, "--thread", help="Continue this thread, or start one under this id (default: a new id)."),
    user: str = typer.Option("default", "--user", help="Who is asking; memories are per user."),
    no_recall: bool = typer.Option(False, "--no-recall", help="No memories in the prompt: the weights alone (with the adapter routed to)."),
    as_json: bool = typer.Option(False, "--json", help="Print the Reply as one JSON object."),
) -> None:
    """Ask one question and print the answer."""
    with open_agent(ctx) as bot:
        recall = False if no_recall else None
        if as_json:
            print_json(bot.chat(text, thread, user, recall=recall))
            return
        stream = bot.stream(text, thread, user, recall=recall, on_status=_status)
        _show(stream)


@app.command()
def chat(
    ctx: typer.Context,
    thread: str = typer.Option(None, "--thread", help="Resume this thread, or start one under this id."),
    user: str = typer.Option("default", "--user", help="Who is talking; memories are per user."),
    no_recall: bool = typer.Option(False, "--no-recall", help="Answer from the weights alone."),
) -> None:
    """Talk with the assistant. Reads lines from stdin when it is not a terminal."""
    interactive = sys.stdin.isatty()
    with open_agent(ctx) as bot:
        session = Session(bot, thread, user, recall=False if no_recall else None)
        if interactive:
            err.print("reverie chat: /help lists commands, /quit leaves", style="dim")
        failed, number = False, 0
        while True:
            number += 1
            try:
                line = input("you> ") if interactive else _read_line()
            except EOFError:
                break
            except UnicodeDecodeError:  # one bad line does not end the conversation either
                err.print(f"error: line {number} is not UTF-8 text; skipped")
                failed = True
                continue
            if not interactive and not line:
                break
            line = line.strip()
            if not line:
                continue
            try:
                if not session.handle(line):
                    break
            except ReverieError as exc:  # one bad message does not end the conversation
                err.print(f"error: {exc}")
                failed = True
        if failed and not interactive:
            raise typer.Exit(1)


def _read_line() -> str:
    """One line of piped input, as UTF-8 ("" at the end)."""
    stream = getattr(sys.stdin, "buffer", None)
    return stream.readline().decode("utf-8") if stream is not None else sys.stdin.readline()


class Session:
    """The state of one `reverie chat`: its thread, and the last answer that slash commands rate."""

    def __init__(self, bot, thread: str | None, user: str, recall: bool | None) -> None:
        self.bot, self.thread, self.user, self.recall = bot, thread, user, recall
        self.last_turn: int | None = None

    def handle(self, line: str) -> bool:
        """Act on one line; False means leave."""
        if not line.startswith("/"):
            stream = self.bot.stream(line, self.thread, self.user, recall=self.recall, on_status=_status)
            reply = _show(stream)
            self.thread, self.last_turn = reply.thread_id, reply.turn_id
            return True
        command, _, argument = line.partition(" ")
        argument = argument.strip()
        if command in ("/quit", "/exit"):
            return False
        if command == "/help":
            err.print(HELP)
        elif command == "/new":
            self.thread = self.last_turn = None
            err.print("new thread", style="dim")
        elif command == "/remember":
            experience = self.bot.teach(argument, user=self.user)
            err.print(f"remembered as experience {experience}", style="dim")
        elif command in ("/good", "/bad", "/fix", "/better", "/comment"):
            if self.last_turn is None:
                err.print("nothing to rate yet: ask something first")
                return True
            kind = {"/good": "up", "/bad": "down", "/fix": "correction", "/better": "preference",
                    "/comment": "comment"}[command]
            text, payload = (None, {"better": argument}) if kind == "preference" else (argument or None, None)
            recorded = self.bot.feedback(self.last_turn, kind, text=text, payload=payload, user=self.user)
            err.print(f"feedback {recorded.id} ({recorded.kind}) on turn {self.last_turn}", style="dim")
        else:
            err.print(f"unknown command {command}; /help lists them")
        return True


def _status(text: str) -> None:
    err.print(f"\n… {text}", end="", style="dim")


def _show(stream):
    """Print an answer as it streams, then what the verifiers said and the turn's summary on stderr."""
    shown = []
    for chunk in stream:
        shown.append(chunk)
        out.file.write(visible(chunk))
        out.file.flush()
    out.file.write("\n")
    reply = stream.reply
    if reply.text.strip() != "".join(shown).strip():  # a verifier replaced the streamed answer
        err.print("── after verification, the answer is:", style="dim")
        out.print(reply.text)
    for verdict in reply.verdicts:
        err.print(verdict_line(verdict), style="dim")
    count = len(reply.memories)
    recalled = f" · {count} {'memory' if count == 1 else 'memories'} recalled" if count else ""
    cut = " · cut at max_new_tokens" if reply.finish_reason == "length" else ""
    err.print(
        f"turn {reply.turn_id} · thread {reply.thread_id} · {reply.model_version} · "
        f"{reply.latency_s:.1f} s · {reply.prompt_tokens}+{reply.completion_tokens} tokens{recalled}{cut}", style="dim",
    )
    return reply


def verdict_line(verdict: dict) -> str:
    """One short line per verdict: what was checked, the outcome, and its cost."""
    if verdict.get("kind") == "code":
        score = "" if verdict.get("score") is None else f" {verdict['score']:.2f}"
        revised = f" · revised, kept the {verdict['kept']}" if verdict.get("revised") else ""
        unreliable = f" · {verdict['reliability']}" if verdict.get("reliability") else ""
        return (f"code check ({verdict['mode']}): {verdict['result']}{score}{revised}{unreliable} · "
                f"{verdict['latency_s']:.1f} s")
    if verdict.get("kind") == "choice":
        took = f" · {verdict['latency_s']:.1f} s" if "latency_s" in verdict else ""
        return f"choice check: {verdict['result']} · {verdict['analysis']}{took}"
    return f"verdict: {verdict}"
