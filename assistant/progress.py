"""Progress of long work (ingest, evaluations, training), reported through a protocol the caller passes in.

The library never draws a progress bar: the CLI passes a rich one (`assistant.cli_progress`), the app an
`st.progress`, tests and background jobs nothing (`NO_PROGRESS`).
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, task: str, total: int) -> None:
        """A task of `total` steps begins (a task name is unique while it runs)."""

    def advance(self, task: str, steps: int = 1) -> None: ...

    def finish(self, task: str) -> None: ...


class _Silent:
    def start(self, task: str, total: int) -> None:
        return None

    def advance(self, task: str, steps: int = 1) -> None:
        return None

    def finish(self, task: str) -> None:
        return None


NO_PROGRESS: Progress = _Silent()
