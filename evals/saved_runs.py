"""The evaluation runs saved in ASSISTANT_DATA_DIR/eval-runs, by kind, oldest first: what the app's quality page
charts without a Langfuse server."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.answers import ANSWERS_SUFFIX
from evals.leaks import LEAKS_SUFFIX


@dataclass
class SavedRuns:
    retrieval: list[dict[str, Any]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    leaks: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # file names, shown rather than silently skipped


def read_saved_runs(folder: Path) -> SavedRuns:
    runs = SavedRuns()
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            runs.unreadable.append(path.name)
            continue
        data["file"] = path.name
        if path.name.endswith(LEAKS_SUFFIX):
            runs.leaks.append(data)
        elif path.name.endswith(ANSWERS_SUFFIX):
            runs.answers.append(data)
        elif "queries" in data and "aggregate" in data:
            runs.retrieval.append(data)
    for kind in (runs.retrieval, runs.answers, runs.leaks):
        kind.sort(key=lambda run: str(run.get("created", "")))
    return runs
