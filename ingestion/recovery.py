"""Rebuilding sync-state rows from the index itself, for indexed documents the state does not know (the state
file was lost, or restored from an older copy).

Without this, documents gone from the source while the state was missing would linger in the index for good.
Every recovered document is read and embedded again (its hash never matches), and its front matter groups are
taken to be the groups it is served with, so a recovered document can be narrowed or withdrawn by today's
policy but never widened.
"""

from __future__ import annotations

from assistant.store import VectorStore
from ingestion.state import DocumentState

RECOVERED = "recovered-from-index"  # a content hash no document has: every recovered document is read again


def recovered_from_index(store: VectorStore, collection: str, doc_ids: set[str]) -> dict[str, DocumentState]:
    found: dict[str, DocumentState] = {}
    for chunk in store.iter_chunks(collection):
        if chunk.doc_id not in doc_ids:
            continue
        known = found.get(chunk.doc_id)
        # Chunks of one document share its groups; should they not, only groups all of them have are kept.
        groups = chunk.groups if known is None else tuple(g for g in known.groups if g in chunk.groups)
        found[chunk.doc_id] = DocumentState(
            doc_id=chunk.doc_id,
            path=chunk.path,
            content_hash=RECOVERED,
            groups=groups,
            front_matter_groups=groups,
            version=chunk.version,
            chunks=(known.chunks if known else 0) + 1,
            title=chunk.title,
        )
    return found
