"""The record of past syncs: one JSON line per real (not dry-run) sync in `ingest-runs.jsonl` in the data
directory, written by `run_ingest`, so the CLI's and the app's re-ingests share one history."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from ingestion.summary import SyncSummary

_WRITING = threading.Lock()  # the app's re-ingest thread and a CLI command of the same process


def history_path(data_dir: Path) -> Path:
    return data_dir / "ingest-runs.jsonl"


def record_run(data_dir: Path, summary: SyncSummary, started_by: str) -> None:
    entry = {"finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "started_by": started_by, **summary.to_json()}
    path = history_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _WRITING, path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")


def read_runs(data_dir: Path, collection: str | None = None) -> list[dict[str, Any]]:
    """Past syncs, newest first."""
    path = history_path(data_dir)
    if not path.exists():
        return []
    runs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            runs.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a crash: the others still show
            continue
    return [r for r in reversed(runs) if collection is None or r.get("collection") == collection]
