"""The embedded store as every process of one machine sees it: `assistant ask` and `assistant ingest` work beside
the running app (and the app beside a long ingest).

For each collection, the first process to use it takes the shard (its lock) and serves it to the others
(`peer.IndexServer`); a later process finds the lock held and calls the holder (`peer.PeerStore`). When the holder
exits, the next call finds it gone and takes the shard itself. The choice and its measurements are in
docs/ingestion.md ("One index, several processes").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from assistant.access import Principal
from assistant.errors import IndexInUseError, StoreError
from assistant.store.base import ChunkRecord, SearchQuery, StoredChunk, VectorSpace
from assistant.store.edge import EdgeStore
from assistant.store.peer import IndexServer, PeerGone, PeerStore

ATTEMPTS = 25  # a holder between taking the lock and serving, or exiting (flushing), is found within 5 s
PAUSE_S = 0.2


class SharedEdgeStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._local = EdgeStore(root)
        self._servers: dict[str, IndexServer] = {}
        self._peers: dict[str, PeerStore] = {}
        self._mutex = threading.Lock()
        self._closed = False

    def holder(self, collection: str) -> str:
        """'this process', 'pid N' (served by another process) or 'nobody yet': for status lines and tests."""
        if collection in self._servers:
            return "this process"
        peer = self._peers.get(collection)
        return f"pid {peer.pid}" if peer is not None else "nobody yet"

    def _route(self, collection: str, dimension: int | None) -> PeerStore | None:
        """None: this process holds the collection (and serves it); else the holder to call."""
        with self._mutex:
            if self._closed:  # a late call (a shadow thread) must not take the shard again after close
                raise StoreError(f"the store of {self.root} is closed")
            if collection in self._servers:
                return None
            if collection in self._peers:
                return self._peers[collection]
            try:
                self._local.take(collection, dimension)
            except IndexInUseError as busy:
                try:
                    peer = PeerStore(self.root, collection)
                except PeerGone as unreachable:  # not serving yet, or just exited: the caller tries again
                    raise PeerGone(str(busy)) from unreachable
                self._peers[collection] = peer
                return peer
            self._servers[collection] = IndexServer(self._local, self.root, collection)
            return None

    def _call(self, collection: str, name: str, *args: Any, dimension: int | None = None) -> Any:
        last = PeerGone(f"the index {self.root / collection} is held by a process that did not answer")
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(PAUSE_S)
            try:
                peer = self._route(collection, dimension)
                if peer is None:
                    return getattr(self._local, name)(collection, *args)
                return peer.call(name, collection, *args)
            except PeerGone as exc:
                last = exc
                with self._mutex:
                    gone = self._peers.pop(collection, None)
                if gone is not None:
                    gone.close()
        # The holder keeps the shard and answers no one (an older version, or stuck): its own one line.
        raise IndexInUseError(str(last))

    # -- the VectorStore interface --------------------------------------------------------------
    def has_collection(self, collection: str) -> bool:
        return self._local.has_collection(collection)

    def vector_space(self, collection: str) -> VectorSpace | None:
        return self._local.vector_space(collection)

    def ensure_collection(self, collection: str, space: VectorSpace) -> None:
        self._call(collection, "ensure_collection", space, dimension=space.dimension)

    def write_chunks(self, collection: str, chunks: Sequence[ChunkRecord], stale: Mapping[str, str]) -> None:
        self._call(collection, "write_chunks", list(chunks), dict(stale))

    def set_groups(self, collection: str, doc_id: str, groups: Sequence[str]) -> None:
        self._call(collection, "set_groups", doc_id, list(groups))

    def delete_documents(self, collection: str, doc_ids: Sequence[str]) -> None:
        self._call(collection, "delete_documents", list(doc_ids))

    def purge_tombstones(self, collection: str) -> None:
        self._call(collection, "purge_tombstones")

    def finish_writes(self, collection: str) -> None:
        self._call(collection, "finish_writes")

    def chunk_ids(self, collection: str, doc_ids: Sequence[str]) -> dict[str, set[str]]:
        return self._call(collection, "chunk_ids", list(doc_ids))  # type: ignore[no-any-return]

    def doc_ids(self, collection: str) -> set[str]:
        return self._call(collection, "doc_ids")  # type: ignore[no-any-return]

    def count(self, collection: str) -> int:
        return self._call(collection, "count")  # type: ignore[no-any-return]

    def iter_chunks(self, collection: str) -> Iterator[StoredChunk]:
        return iter(self._call(collection, "iter_chunks"))

    def search(self, collection: str, principal: Principal, query: SearchQuery) -> list[StoredChunk]:
        return self._call(collection, "search", principal, query)  # type: ignore[no-any-return]

    def readable_doc_ids(self, collection: str, principal: Principal, doc_ids: Sequence[str]) -> set[str]:
        return self._call(collection, "readable_doc_ids", principal, list(doc_ids))  # type: ignore[no-any-return]

    def close(self) -> None:
        with self._mutex:
            self._closed = True
            for server in self._servers.values():
                server.close()  # first: no other process is answered from a closing store
            for peer in self._peers.values():
                peer.close()
            self._servers.clear()
            self._peers.clear()
            self._local.close()
