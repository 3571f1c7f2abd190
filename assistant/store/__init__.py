"""Vector stores: one interface (`VectorStore`), backends chosen by `store.backend`, imported lazily."""

from __future__ import annotations

from assistant.settings import Settings
from assistant.store.base import ChunkRecord, SearchQuery, StoredChunk, VectorSpace, VectorStore, chunk_point_id

__all__ = ["ChunkRecord", "SearchQuery", "StoredChunk", "VectorSpace", "VectorStore", "build_store", "chunk_point_id"]


def build_store(settings: Settings) -> VectorStore:
    backend = settings.store.backend
    if backend == "edge":
        from assistant.store.shared import SharedEdgeStore

        return SharedEdgeStore(settings.index_dir)

    from qdrant_client import QdrantClient

    from assistant.store.server import QdrantServerStore

    if backend == "server":
        api_key = settings.store.api_key.get_secret_value() if settings.store.api_key else None
        client = QdrantClient(url=settings.store.url, api_key=api_key, timeout=settings.store.timeout_s)
    else:  # "local": qdrant-client's in-process stand-in for a server
        client = QdrantClient(path=str(settings.data_dir / "qdrant-local"))
    return QdrantServerStore(client)
