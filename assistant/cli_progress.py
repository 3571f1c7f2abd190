"""The command line's progress bar: rich, drawn only on a terminal. Implements `assistant.progress.Progress`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichBar

from assistant.progress import NO_PROGRESS, Progress


class RichProgress:
    def __init__(self, bar: RichBar) -> None:
        self._bar = bar
        self._tasks: dict[str, tuple[TaskID, int]] = {}

    def start(self, task: str, total: int) -> None:
        self._tasks[task] = (self._bar.add_task(task, total=total), total)

    def advance(self, task: str, steps: int = 1) -> None:
        self._bar.advance(self._tasks[task][0], steps)

    def finish(self, task: str) -> None:
        task_id, total = self._tasks.pop(task)
        self._bar.update(task_id, completed=total)


@contextmanager
def terminal_progress(console: Console, *, quiet: bool = False) -> Iterator[Progress]:
    """A rich bar on a terminal; nothing when quiet or when output goes to a file or pipe."""
    if quiet or not console.is_terminal:
        yield NO_PROGRESS
        return
    columns = (TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with RichBar(*columns, console=console) as bar:
        yield RichProgress(bar)
