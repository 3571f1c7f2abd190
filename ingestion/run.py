"""Run one sync from a path: open the source, the store and the state, sync, close them (and the store lock)."""

from __future__ import annotations

from pathlib import Path

from assistant.embedder import Embedder
from assistant.errors import AccessPolicyError
from assistant.settings import Settings
from assistant.store import build_store
from ingestion.access_policy import AccessPolicy
from ingestion.sources import SourceFailure, open_source
from ingestion.state import SyncState
from ingestion.summary import SyncSummary
from ingestion.sync import Ingestor


def run_ingest(
    settings: Settings, source_path: Path, collection: str, groups: list[str] | None, *, dry_run: bool, progress: bool
) -> SyncSummary:
    """Open the source, the store and the state, sync, and close them again (the store lock included).

    An invalid access policy syncs nothing: dropping one bad rule could let an earlier, broader rule apply.
    """
    policy = AccessPolicy.grant_all(groups) if groups else None
    try:
        source = open_source(source_path, policy, settings.ingest.extensions, settings.ingest.max_file_bytes)
    except AccessPolicyError as exc:
        where = f"line {exc.line}: " if exc.line is not None else ""
        error = f"{where}{exc.reason}; nothing was synced, the index keeps serving its previous state"
        failure = SourceFailure(Path(exc.path).name, error)
        return SyncSummary(collection, str(source_path.resolve()), dry_run, failed=[failure])
    state = SyncState(settings.state_path)
    store = build_store(settings)
    try:
        return Ingestor(settings, store, Embedder(settings.embedder), state).sync(
            source, collection, dry_run=dry_run, progress=progress
        )
    finally:
        store.close()
        state.close()
