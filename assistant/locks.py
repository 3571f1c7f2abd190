"""Advisory file locks that say who holds them: one process per embedded shard, one sync per data directory,
one conversion of a model at a time.

Qdrant Edge opens a shard in one process only (a second open fails deep inside with "failed to open WAL ...
WouldBlock"). Taking `IndexLock` first turns that into one clear line naming the holder (whose `shared.py` serves
the index to the others). `SyncLock` keeps two syncs (the app's corpus page and `assistant ingest` beside it) from
planning from the same state at once. The operating system drops a lock when its process dies, even on kill -9,
so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO

from assistant.errors import AssistantError, IndexInUseError, SyncInProgressError


class FileLock:
    """An exclusive, non-blocking flock on `path`; `busy(holder)` is the error raised when it is taken."""

    def __init__(self, path: Path, busy: Callable[[str], AssistantError]) -> None:
        self.path = path
        self._busy = busy
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = _describe(handle.read())
            handle.close()
            raise self._busy(holder) from None
        handle.seek(0)
        handle.truncate()
        owner = {"pid": os.getpid(), "command": " ".join(sys.argv) or "python", "since": time.time()}
        handle.write(json.dumps(owner))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class IndexLock(FileLock):
    def __init__(self, path: Path) -> None:
        def busy(holder: str) -> AssistantError:
            return IndexInUseError(
                f"the index {path.with_suffix('')} is in use by {holder}, which does not share it; wait for it to "
                "finish, or share one index between processes with the server profile (ASSISTANT_PROFILE=server)"
            )

        super().__init__(path, busy)


class SyncLock:
    """One sync at a time in a data directory: a second thread of this process waits its turn, a second process
    is refused with one line naming the sync that runs (a silent wait would look like a hang)."""

    def __init__(self, path: Path) -> None:
        self._thread = threading.Lock()

        def busy(holder: str) -> AssistantError:
            return SyncInProgressError(f"a sync is running in {holder}; wait for it to finish, then run this again")

        self._file = FileLock(path, busy)

    def __enter__(self) -> None:
        self._thread.acquire()
        try:
            self._file.acquire()
        except BaseException:
            self._thread.release()
            raise

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._file.release()
        self._thread.release()


@contextmanager
def waiting_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path`, waiting for another process to let go (a one-time model conversion)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _describe(raw: str) -> str:
    try:
        owner = json.loads(raw)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(owner["since"])))
        return f"pid {owner['pid']} ({owner['command']}, since {since})"
    except (ValueError, KeyError, TypeError):
        return "another process"
