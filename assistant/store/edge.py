"""Qdrant Edge backend: Qdrant's engine inside this process, one shard directory per collection.

One process owns a shard (`assistant/locks.py`; `shared.py` serves it to the others); inside it the app serves
queries and runs a re-ingest through this one object, whose calls are serialised by a lock (each is milliseconds).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from qdrant_edge import (
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeSparseVectorParams,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    Fusion,
    MatchAny,
    MatchValue,
    Modifier,
    PayloadSchemaType,
    Point,
    Prefetch,
    Query,
    QueryRequest,
    ScrollRequest,
    UpdateOperation,
)
from qdrant_edge import SparseVector as EdgeSparse

from assistant.access import Principal
from assistant.errors import StoreError
from assistant.locks import IndexLock
from assistant.store.base import (
    DENSE,
    DOC_ID,
    GROUPS,
    KIND,
    LIVE,
    SPARSE,
    TOMBSTONE,
    ChunkRecord,
    SearchQuery,
    StoredChunk,
    VectorSpace,
    must_record_space,
    tombstone_payload,
)

T = TypeVar("T")


def _engine(what: str, call: Callable[..., T], *args: Any) -> T:
    """Run one engine call; its errors (plain Exceptions from the bindings) become one-line StoreErrors."""
    try:
        return call(*args)
    except Exception as exc:
        raise StoreError(f"Qdrant Edge {what} failed: {exc}".replace("\n", " ")) from exc


def _visible() -> Filter:
    return Filter(must=[FieldCondition(KIND, match=MatchValue(LIVE))])


def _of_doc(doc_id: str) -> Filter:
    return Filter(must=[FieldCondition(DOC_ID, match=MatchValue(doc_id))])


def _of_groups(principal: Principal) -> FieldCondition:
    return FieldCondition(GROUPS, match=MatchAny(sorted(principal.groups)))


def _readable_by(principal: Principal) -> Filter:
    return Filter(must=[_of_groups(principal)])


class EdgeStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._shards: dict[str, EdgeShard] = {}
        self._locks: dict[str, IndexLock] = {}
        self._mutex = threading.RLock()

    # -- shards ---------------------------------------------------------------------------------
    def _shard_dir(self, collection: str) -> Path:
        return self.root / collection

    def has_collection(self, collection: str) -> bool:
        return collection in self._shards or (self._shard_dir(collection) / "edge_config.json").exists()

    def _open(self, collection: str, dimension: int | None) -> EdgeShard:
        with self._mutex:
            if collection in self._shards:
                return self._shards[collection]
            lock = IndexLock(self.root / f"{collection}.lock")
            lock.acquire()
            try:
                shard = self._load_or_create(collection, dimension)
            except Exception:
                lock.release()
                raise
            self._shards[collection] = shard
            self._locks[collection] = lock
            return shard

    def take(self, collection: str, dimension: int | None = None) -> None:
        """Open (and lock) the collection's shard now; IndexInUseError when another process holds it."""
        self._open(collection, dimension)

    def _load_or_create(self, collection: str, dimension: int | None) -> EdgeShard:
        path = self._shard_dir(collection)
        try:
            if (path / "edge_config.json").exists():
                return EdgeShard.load(str(path))
            if dimension is None:
                raise StoreError(f"collection {collection!r} does not exist at {path}; ingest a source first")
            config = EdgeConfig(
                vectors={DENSE: EdgeVectorParams(size=dimension, distance=Distance.Cosine)},
                sparse_vectors={SPARSE: EdgeSparseVectorParams(modifier=Modifier.Idf)},
            )
            shard = EdgeShard.create(str(path), config)
            for field in (GROUPS, DOC_ID, KIND):
                shard.update(UpdateOperation.create_field_index(field, PayloadSchemaType.Keyword))
            return shard
        except StoreError:
            raise
        except Exception as exc:  # the bindings raise plain Exception with the engine's message
            raise StoreError(f"Qdrant Edge could not open {path}: {exc}") from exc

    def ensure_collection(self, collection: str, space: VectorSpace) -> None:
        new = not self.has_collection(collection)
        self._open(collection, space.dimension)
        # A new shard is recorded without reading a side file a deleted shard may have left: it describes nothing.
        dimension = partial(self._dimension, collection)  # read only when adopting an older collection
        if new or must_record_space(collection, self.vector_space(collection), dimension, space):
            self._record_space(collection, space)

    def _space_file(self, collection: str) -> Path:
        return self.root / f"{collection}.space.json"

    def _dimension(self, collection: str) -> int:
        config = json.loads((self._shard_dir(collection) / "edge_config.json").read_text(encoding="utf-8"))
        return int(config["vectors"][DENSE]["size"])

    def vector_space(self, collection: str) -> VectorSpace | None:
        path = self._space_file(collection)
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return VectorSpace(str(data["embedder"]), int(data["dimension"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"{path} is unreadable ({exc}); it records which embedder built {collection!r}: restore it, or "
                "delete it to let the next ingest record the configured embedder again"
            ) from exc

    def _record_space(self, collection: str, space: VectorSpace) -> None:
        path = self._space_file(collection)
        unfinished = path.with_suffix(".partial")
        with unfinished.open("w", encoding="utf-8") as handle:
            json.dump({"embedder": space.embedder, "dimension": space.dimension}, handle)
            handle.flush()
            os.fsync(handle.fileno())  # a power cut leaves the old file or the new one, never an empty one
        os.replace(unfinished, path)

    def _run(self, collection: str, operation: UpdateOperation) -> None:
        shard = self._open(collection, None)
        with self._mutex:
            _engine("update", shard.update, operation)

    # -- writes ---------------------------------------------------------------------------------
    def write_chunks(self, collection: str, chunks: Sequence[ChunkRecord], stale: Mapping[str, str]) -> None:
        points = [
            Point(
                c.id,
                {DENSE: list(map(float, c.dense)), SPARSE: EdgeSparse(c.sparse.indices, c.sparse.values)},
                c.payload(),
            )
            for c in chunks
        ]
        points += [Point(pid, {}, tombstone_payload(doc_id)) for pid, doc_id in stale.items()]
        if points:
            self._run(collection, UpdateOperation.upsert_points(points))

    def set_groups(self, collection: str, doc_id: str, groups: Sequence[str]) -> None:
        if not groups:
            raise ValueError(f"refusing to set empty groups on {doc_id}: delete the document instead")
        doc_visible = Filter(must=[FieldCondition(DOC_ID, match=MatchValue(doc_id)), _visible()])
        self._run(collection, UpdateOperation.set_payload_by_filter(doc_visible, {GROUPS: list(groups)}))

    def delete_documents(self, collection: str, doc_ids: Sequence[str]) -> None:
        if doc_ids:
            selector = Filter(must=[FieldCondition(DOC_ID, match=MatchAny(list(doc_ids)))])
            self._run(collection, UpdateOperation.delete_points_by_filter(selector))

    def purge_tombstones(self, collection: str) -> None:
        dead = Filter(must=[FieldCondition(KIND, match=MatchValue(TOMBSTONE))])
        self._run(collection, UpdateOperation.delete_points_by_filter(dead))

    def finish_writes(self, collection: str) -> None:
        shard = self._open(collection, None)
        with self._mutex:
            _engine("flush", shard.flush)
            _engine("optimize", shard.optimize)

    # -- reads ----------------------------------------------------------------------------------
    def _scroll(self, collection: str, selector: Filter, with_payload: bool | list[str]) -> Iterator[StoredChunk]:
        shard = self._open(collection, None)
        offset = None
        while True:
            with self._mutex:
                records, offset = _engine(
                    "scroll",
                    shard.scroll,
                    ScrollRequest(offset=offset, limit=1024, filter=selector, with_payload=with_payload),
                )
            for record in records:
                yield StoredChunk(id=str(record.id), score=0.0, payload=record.payload or {})
            if offset is None:
                return

    def doc_ids(self, collection: str) -> set[str]:
        return {chunk.doc_id for chunk in self._scroll(collection, _visible(), with_payload=[DOC_ID])}

    def chunk_ids(self, collection: str, doc_ids: Sequence[str]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {doc_id: set() for doc_id in doc_ids}
        if not doc_ids:
            return found
        selector = Filter(must=[FieldCondition(DOC_ID, match=MatchAny(list(doc_ids))), _visible()])
        for chunk in self._scroll(collection, selector, with_payload=True):
            found[chunk.doc_id].add(chunk.id)
        return found

    def count(self, collection: str) -> int:
        shard = self._open(collection, None)
        with self._mutex:
            return int(_engine("count", shard.count, CountRequest(exact=True, filter=_visible())))

    def iter_chunks(self, collection: str) -> Iterator[StoredChunk]:
        return self._scroll(collection, _visible(), with_payload=True)

    def search(self, collection: str, principal: Principal, query: SearchQuery) -> list[StoredChunk]:
        if not principal.groups:
            return []
        allowed = _readable_by(principal)  # in every stage, never applied after the query
        stages: list[tuple[Query, float]] = []
        if query.dense is not None:
            stages.append((Query.Nearest([float(x) for x in query.dense], using=DENSE), query.dense_weight))
        if query.has_sparse:
            assert query.sparse is not None
            sparse = EdgeSparse(query.sparse.indices, query.sparse.values)
            stages.append((Query.Nearest(sparse, using=SPARSE), query.sparse_weight))
        if len(stages) == 1:
            request = QueryRequest(limit=query.limit, query=stages[0][0], filter=allowed, with_payload=True)
        else:
            fusion = (
                Fusion.Rrf(k=query.rrf_k, weights=[w for _, w in stages]) if query.fusion == "rrf" else Fusion.Dbsf()
            )
            request = QueryRequest(
                limit=query.limit,
                prefetches=[Prefetch(limit=query.candidates, query=q, filter=allowed) for q, _ in stages],
                query=fusion,  # type: ignore[arg-type]  # the stub's union omits Fusion's inner classes
                filter=allowed,
                with_payload=True,
            )
        shard = self._open(collection, None)
        with self._mutex:
            hits = _engine("query", shard.query, request)
        return [StoredChunk(id=str(h.id), score=float(h.score), payload=h.payload or {}) for h in hits]

    def readable_doc_ids(self, collection: str, principal: Principal, doc_ids: Sequence[str]) -> set[str]:
        if not principal.groups or not doc_ids:
            return set()
        selector = Filter(
            must=[FieldCondition(DOC_ID, match=MatchAny(list(doc_ids))), _visible(), _of_groups(principal)]
        )
        return {chunk.doc_id for chunk in self._scroll(collection, selector, with_payload=[DOC_ID])}

    def close(self) -> None:
        with self._mutex:
            for collection, shard in self._shards.items():
                shard.flush()
                shard.close()
                self._locks[collection].release()
            self._shards.clear()
            self._locks.clear()
