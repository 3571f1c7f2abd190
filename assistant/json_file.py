"""The project's own JSON records (adapter, promotion, evidence scorer, build report) are written whole: a reader
never sees half a file, and a crash leaves the previous version in place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    partial.replace(path)


def read_json(path: Path, *, reads: int, version_key: str = "version") -> tuple[dict[str, Any], int]:
    """A record and its version (absent: 1). A version newer than `reads` (what this code understands) is a
    ValueError: the caller turns it into its record's ConfigError, naming the file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    version = int(data.get(version_key, 1))
    if version > reads:
        label = "record version" if version_key == "record_version" else "version"
        raise ValueError(f"{label} {version} is newer than this assistant reads ({reads})")
    return data, version


def file_stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when the file is replaced or edited (modified time, inode, size); None: no file."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_mtime_ns, stat.st_ino, stat.st_size)


class FileWatch:
    """Tells a long-running process whether a record file was written, created or removed since it last asked
    (the first ask: yes), so it re-reads the record only then."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = (-1, -1, -1)  # no file's stamp: the first ask sees a change

    def changed(self) -> bool:
        stamp = file_stamp(self.path)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        return True
