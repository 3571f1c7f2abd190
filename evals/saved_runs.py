"""The evaluation runs saved in ASSISTANT_DATA_DIR/eval-runs, by kind, oldest first: what the app's quality page
charts without a Langfuse server.

Runs hold other people's questions and document ids (and an answer run, answers: document text), so a reviewer
sees them through `redact_runs`: an entry names its question and documents only where the reviewer may read every
document it names (`evals.redaction`); aggregates are shown as they are."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.access import Principal
from evals.answers import ANSWERS_SUFFIX
from evals.leaks import LEAKS_SUFFIX
from evals.redaction import REDACTED, DocumentGroups, why_redacted


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


def redact_runs(runs: SavedRuns, reviewer: Principal, documents: DocumentGroups, default_collection: str) -> SavedRuns:
    """The runs as `reviewer` may see them. A run's documents are looked up in the collection it names (runs
    saved before runs named one: `default_collection`); a document the sync state does not know is unreadable."""

    def hidden(run: dict[str, Any], doc_ids: Iterable[str]) -> str | None:
        named = set(doc_ids)
        unreadable = documents.unreadable(reviewer, str(run.get("collection") or default_collection), named)
        return why_redacted(len(unreadable), len(named)) if unreadable else None

    def query(run: dict[str, Any], q: dict[str, Any]) -> dict[str, Any]:
        why = hidden(run, [*q.get("top", []), *q.get("relevant", [])])
        return q if why is None else {**q, "question": REDACTED, "top": [], "relevant": [], "redacted": why}

    def sample(run: dict[str, Any], s: dict[str, Any]) -> dict[str, Any]:
        why = hidden(run, [*s.get("cited", []), *s.get("relevant", [])])
        if why is None:
            return s
        blanked: dict[str, Any] = {
            "question": REDACTED,
            "answer": REDACTED,
            "reference": None,
            "trace_id": None,
            "groups": [],
        }
        return {**s, **blanked, "cited": [], "relevant": [], "redacted": why}

    def leak(run: dict[str, Any], found: dict[str, Any]) -> dict[str, Any]:
        collection = str(run.get("collection") or default_collection)
        asked_for = documents.titled(collection, str(found.get("question", "")))  # a probe may ask by title
        why = hidden(run, [str(found.get("doc_id", "")), *asked_for])
        return (
            found
            if why is None
            else {**found, "question": REDACTED, "doc_id": REDACTED, "doc_groups": [], "redacted": why}
        )

    return SavedRuns(
        retrieval=[{**r, "queries": [query(r, q) for q in r.get("queries", [])]} for r in runs.retrieval],
        answers=[{**r, "samples": [sample(r, s) for s in r.get("samples", [])]} for r in runs.answers],
        leaks=[{**r, "leaks": [leak(r, f) for f in r.get("leaks", [])]} for r in runs.leaks],
        unreadable=list(runs.unreadable),
    )
