"""The record of past syncs: one JSON line per real (not dry-run) sync in `ingest-runs.jsonl` in the data
directory, written by `run_ingest`, so the CLI's and the app's re-ingests share one history."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from assistant.jsonl import append_record, read_records
from assistant.settings import SYNC_HISTORY
from ingestion.summary import SyncSummary


def history_path(data_dir: Path) -> Path:
    return data_dir / SYNC_HISTORY


def record_run(data_dir: Path, summary: SyncSummary, started_by: str) -> None:
    entry = {"finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "started_by": started_by, **summary.to_json()}
    append_record(history_path(data_dir), entry)


def read_runs(data_dir: Path, collection: str | None = None) -> list[dict[str, Any]]:
    """Past syncs, newest first."""
    runs = read_records(history_path(data_dir))
    return [r for r in reversed(runs) if collection is None or r.get("collection") == collection]
