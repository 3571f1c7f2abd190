"""The collection an evaluation runs against: a BEIR corpus gets a collection of its own, synced on first use
and reused afterwards (an unchanged re-sync takes about a second); a golden set runs against the configured
collection."""

from __future__ import annotations

from assistant.components import Components
from assistant.progress import NO_PROGRESS, Progress
from evals.datasets import EVAL_GROUP, EvalSet
from ingestion.run import run_ingest
from ingestion.summary import SyncSummary


def prepare_collection(
    components: Components, dataset: EvalSet, collection: str | None, progress: Progress = NO_PROGRESS
) -> tuple[str, SyncSummary | None]:
    """(the collection to evaluate, the summary of the sync it took, if any)."""
    if dataset.corpus is None:
        return components.collection(collection), None
    summary = run_ingest(components, dataset.corpus, dataset.collection, [EVAL_GROUP], progress=progress)
    return dataset.collection, summary
