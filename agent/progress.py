"""Progress of long work (a night, a benchmark) as rich bars: the ``learners.training.Progress``
protocol drawn on a terminal. Each phase gets its own bar, kept until the work ends."""

from __future__ import annotations

from collections.abc import Callable

from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

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
