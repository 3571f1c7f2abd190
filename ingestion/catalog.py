"""What a collection holds now, as the sync state records it: its source and its documents (groups, versions)."""

from __future__ import annotations

from dataclasses import dataclass

from assistant.settings import Settings
from ingestion.state import DocumentState, SyncState


@dataclass(frozen=True)
class Catalog:
    collection: str
    source: str | None  # the folder the collection is synced from; None before its first sync
    documents: list[DocumentState]


def read_catalog(settings: Settings, collection: str) -> Catalog:
    state = SyncState(settings.state_path)
    try:
        documents = sorted(state.documents(collection).values(), key=lambda d: d.path)
        return Catalog(collection, state.source_of(collection), documents)
    finally:
        state.close()
