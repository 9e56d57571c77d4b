"""The root Typer app, its global options, and what every command shares.

Commands are thin: parse, call the ``Agent`` facade, render. ``--json`` prints one JSON object,
the same pydantic model the Python API returns (lists are wrapped in an object).
"""

from __future__ import annotations

import json
import os
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel
from rich.console import Console

from agent.errors import InvalidInput

app = typer.Typer(
    name="reverie",
    help="A self-updating assistant that remembers what it is told.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        print(f"reverie {version('reverie')}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: str = typer.Option(None, "--home", help="Data home (default: $REVERIE_HOME or ~/.local/share/reverie)."),
    model: str = typer.Option(None, "--model", help="Chat model: embedded:NAME, a folder or an HF id."),
    settings: list[str] = typer.Option(None, "--set", help="Any setting, as KEY=VALUE (repeatable)."),
    _: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    overrides: dict[str, Any] = {"model": model}
    for item in settings or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--set takes KEY=VALUE, got {item!r}")
        key = key.strip().replace("-", "_")
        if key == "home":
            raise InvalidInput("--set cannot set home; use --home")
        overrides[key] = value
    ctx.obj = {"home": home, "overrides": overrides}


def open_agent(ctx: typer.Context):
    from agent.facade import Agent

    obj = ctx.find_root().obj
    return Agent.open(obj["home"], **obj["overrides"])


def read_text(file: str) -> str:
    """A UTF-8 text file ("-": stdin); a missing, binary or non-UTF-8 file is one clear error."""
    if file == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(file).read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read {file}: {exc.strerror or exc}") from exc
    if b"\x00" in data:
        raise InvalidInput(f"{file} is a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{file} is not UTF-8 text (byte {exc.start} is invalid)") from exc


def print_json(value: BaseModel | dict | list) -> None:
    """One JSON object on stdout; pydantic models serialise exactly as the API returns them."""
    if isinstance(value, BaseModel):
        text = value.model_dump_json()
    else:
        text = json.dumps(_plain(value), ensure_ascii=False)
    print(text)


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def debug() -> bool:
    return os.environ.get("REVERIE_DEBUG", "") not in ("", "0", "false")
