"""Append-only JSON-lines files in the data directory (feedback, sync history, question log, review decisions).

A record is one line, written whole under a process-wide lock (the app's sessions and its re-ingest are threads of
one process). Reading skips a line a crash cut short, so one torn line never hides the rest.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

_WRITING = threading.Lock()


def append_record(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with _WRITING, path.open("a", encoding="utf-8") as out:
        out.write(line)


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every whole record, oldest first; [] when the file does not exist yet."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # cut short by a crash
            continue
        if isinstance(record, dict):
            records.append(record)
    return records
