"""The root Typer app, its global options, and what every command shares.

Commands are thin: parse, call the ``Agent`` facade, render. ``--json`` prints one JSON object,
the same pydantic model the Python API returns (lists are wrapped in an object).
"""

from __future__ import annotations

import json
import os
import re
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.text import Text

from agent.errors import InvalidInput
from agent.settings import flag_setting

app = typer.Typer(
    name="reverie",
    help="A self-updating assistant that remembers what it is told.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Control characters (C0 but tab and newline, DEL, C1) and the bidirectional overrides: written
# raw, stored text could clear the screen, retitle the window or reorder a line.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """``text`` with every control character shown as its escape (``\x1b``), never sent raw."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}", text)


class _Console(Console):
    """A console on which text is only ever text: markup is off unless a call asks for it (our own
    styling does, with stored values escaped), and control characters are shown, not obeyed.
    Whatever a user said, taught or imported is displayed, never interpreted."""

    def render_str(self, text: str, **kwargs):
        return super().render_str(visible(text), **kwargs)


def styled(text: str, style: str) -> Text:
    """Text in a style, shown as text (a ``Text`` skips the console's own check, so it is made here)."""
    return Text(visible(text), style=style)


out = _Console(highlight=False, soft_wrap=True, markup=False)
err = _Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


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
        key, value = flag_setting(item)
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


def output_file(path: str | Path, suffix: str | None = None) -> Path:
    """Check, before any work, that ``path`` can be written: its folder exists and it is no folder."""
    target = Path(path).expanduser()
    if suffix is not None and target.suffix.lower() != suffix:
        raise InvalidInput(f"{path} is not a {suffix[1:].upper()} file name (it must end in {suffix})")
    if target.is_dir():
        raise InvalidInput(f"{path} is a folder; give a file name")
    if not target.parent.is_dir():
        raise InvalidInput(f"cannot write {path}: no folder {target.parent}")
    return target


def write_output(path: Path, write) -> None:
    """``write(path)``, with a failure to write (permissions, a full disk) as one clear error."""
    try:
        write(path)
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror or exc}") from exc


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
