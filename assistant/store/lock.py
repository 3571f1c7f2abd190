"""One process per embedded index: an advisory file lock that says who holds it.

Qdrant Edge opens a shard in one process only (a second open fails deep inside with "failed to open WAL ...
WouldBlock"). Taking this lock first turns that into one clear line naming the holder. The operating system
drops the lock when its process dies, even on kill -9, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from pathlib import Path
from typing import IO

from assistant.errors import IndexInUseError


class IndexLock:
    def __init__(self, path: Path) -> None:
        self.path = path
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
            raise IndexInUseError(
                f"the index {self.path.with_suffix('')} is in use by {holder}; wait for it to finish, "
                "or share one index between processes with the server profile (ASSISTANT_PROFILE=server)"
            ) from None
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


def _describe(raw: str) -> str:
    try:
        owner = json.loads(raw)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(owner["since"])))
        return f"pid {owner['pid']} ({owner['command']}, since {since})"
    except (ValueError, KeyError, TypeError):
        return "another process"
