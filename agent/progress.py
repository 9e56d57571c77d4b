"""Progress of long work (a night, a benchmark): the ``learners.training.Progress`` protocol drawn
as rich bars on a terminal, and as plain lines anywhere else (a pipe, a log file, CI), where a
live display shows nothing at all.

    with shown(console) as progress:      # Bars on a terminal, Lines elsewhere
        bot.learn(progress=progress)
    for item in steps(items, "checking", console):
        ...
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from learners.training import NullProgress

COLUMNS = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())


class Bars:
    """``phase`` adds a bar to a running ``rich.progress.Progress``; ``note`` prints a dim line above it."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def phase(self, description: str, total: int | None = None) -> Callable[..., None]:
        task = self.progress.add_task(description, total=total)
        return lambda advance=1: self.progress.advance(task, advance)

    def note(self, text: str) -> None:
        self.progress.console.print(text, style="dim", markup=False)


class Lines:
    """The same protocol as plain lines: a phase's first unit done, each tenth of it, and notes.
    (Nothing at a phase's start: work refused before it began prints only its error.)"""

    def __init__(self, console: Console) -> None:
        self.console = console

    def phase(self, description: str, total: int | None = None) -> Callable[..., None]:
        started, done, shown = time.perf_counter(), 0, -1

        def advance(units: int = 1) -> None:
            nonlocal done, shown
            done += units
            tenth = 10 * done // total if total else done // 10
            if tenth > shown:
                shown = tenth
                of = f"{done}/{total}" if total else str(done)
                self._say(f"{description}: {of} ({time.perf_counter() - started:.0f} s)")

        return advance

    def note(self, text: str) -> None:
        self._say(text)

    def _say(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


@contextmanager
def shown(console: Console, *, disable: bool = False) -> Iterator[Bars | Lines | NullProgress]:
    """Progress for ``console``: bars on a terminal, lines elsewhere, nothing when ``disable``."""
    if disable:
        yield NullProgress()
    elif console.is_terminal:
        with Progress(*COLUMNS, console=console, transient=True) as progress:
            yield Bars(progress)
    else:
        yield Lines(console)


def steps(items: Iterable, description: str, console: Console) -> Iterator:
    """``items``, one by one, with their progress shown (``rich.progress.track``, or lines)."""
    items = list(items)
    with shown(console) as progress:
        advance = progress.phase(description, len(items))
        for item in items:
            yield item
            advance(1)
