"""What every vector store backend stores and answers, independent of the backend, and the one place that names
a chunk's payload fields (`ChunkRecord.payload` writes them, `StoredChunk`'s accessors read them).

A chunk point carries its document's groups; every search takes a `Principal` and filters by groups inside
the store query. Replacing a document's chunks is one store write: new chunks overwrite the old ids and the
ids the new version no longer uses become invisible tombstones in the same write, so a reader (or a crash)
sees the old version or the new one, never a mix.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from assistant.access import Principal
from assistant.errors import CollectionMismatchError
from assistant.settings import FusionMethod
from assistant.sparse import SparseVector

DENSE = "dense"
SPARSE = "bm25"
# Payload fields with an index (filters on them are fast on every backend).
GROUPS = "groups"
DOC_ID = "doc_id"
# "kind" is a keyword, not a bool: the Qdrant Edge bindings (0.9) never match a bool payload value.
KIND = "kind"
LIVE = "chunk"
TOMBSTONE = "tombstone"

# Payload fields without an index.
TEXT = "text"
TITLE = "title"
PATH = "path"
SECTION = "section"
VERSION = "version"
CHUNK_INDEX = "chunk_index"
DOC_HASH = "doc_hash"
CHUNK_HASH = "chunk_hash"

_ID_NAMESPACE = uuid.UUID("6f1c1d3e-2b7a-4c55-9a39-7f0c5e2d8b11")


def passage_text(title: str, section: str | None, body: str) -> str:
    """The text a chunk is embedded and BM25-indexed as: title and section heading, then the chunk itself."""
    header = title if not section else f"{title}\n{section}"
    return f"{header}\n\n{body}"


def chunk_point_id(doc_id: str, chunk_index: int) -> str:
    """Stable id of a document's n-th chunk: a new version overwrites the same ids in place."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{doc_id}#{chunk_index}"))


@dataclass(frozen=True)
class VectorSpace:
    """Which embedder made a collection's dense vectors. Vectors of two embedders are not comparable."""

    embedder: str
    dimension: int


def check_space(collection: str, recorded: VectorSpace, wanted: VectorSpace) -> None:
    """A collection is only written and searched with the embedder that built it."""
    if recorded != wanted:
        raise CollectionMismatchError(
            f"collection {collection!r} was built with {recorded.embedder} ({recorded.dimension}-dim vectors), but "
            f"the configured embedder is {wanted.embedder} ({wanted.dimension}-dim): set embedder.model (backend, "
            "quantization) back, or ingest into a new collection (--collection) with this embedder"
        )


def must_record_space(
    collection: str, recorded: VectorSpace | None, dimension: Callable[[], int], wanted: VectorSpace
) -> bool:
    """Check `wanted` against an existing collection; True when it must be recorded: a collection built before
    spaces were recorded adopts the configured embedder if its vectors have the right dimension."""
    if recorded is None:
        check_space(collection, VectorSpace(wanted.embedder, dimension()), wanted)
        return True
    check_space(collection, recorded, wanted)
    return False


@dataclass(frozen=True)
class ChunkRecord:
    """One chunk as written to the store."""

    doc_id: str
    chunk_index: int
    text: str
    title: str
    path: str
    section: str | None
    groups: tuple[str, ...]
    doc_hash: str
    chunk_hash: str
    version: int
    dense: Sequence[float]
    sparse: SparseVector

    @property
    def id(self) -> str:
        return chunk_point_id(self.doc_id, self.chunk_index)

    def payload(self) -> dict[str, Any]:
        if not self.groups:
            raise ValueError(f"chunk {self.doc_id}#{self.chunk_index} has no groups: refusing to store it")
        return {
            DOC_ID: self.doc_id,
            CHUNK_INDEX: self.chunk_index,
            TEXT: self.text,
            TITLE: self.title,
            PATH: self.path,
            SECTION: self.section,
            GROUPS: list(self.groups),
            DOC_HASH: self.doc_hash,
            CHUNK_HASH: self.chunk_hash,
            VERSION: self.version,
            KIND: LIVE,
        }


def tombstone_payload(doc_id: str) -> dict[str, Any]:
    """Payload of an id a document no longer uses: no groups, so no principal can ever match it.

    It keeps its doc id so that deleting the document later removes its tombstones too.
    """
    return {DOC_ID: doc_id, GROUPS: [], KIND: TOMBSTONE}


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as read back from the store."""

    id: str
    score: float
    payload: Mapping[str, Any] = field(repr=False)

    @property
    def doc_id(self) -> str:
        return str(self.payload[DOC_ID])

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(self.payload.get(GROUPS) or ())

    @property
    def text(self) -> str:
        return str(self.payload.get(TEXT, ""))

    @property
    def title(self) -> str:
        return str(self.payload.get(TITLE, ""))

    @property
    def path(self) -> str:
        """The document's path in its source; its doc id for chunks written before paths were stored."""
        return str(self.payload.get(PATH) or self.doc_id)

    @property
    def section(self) -> str | None:
        section = self.payload.get(SECTION)
        return None if section is None else str(section)

    @property
    def version(self) -> int:
        return int(self.payload.get(VERSION, 0))

    @property
    def chunk_index(self) -> int:
        return int(self.payload.get(CHUNK_INDEX, 0))

    @property
    def doc_hash(self) -> str:
        return str(self.payload.get(DOC_HASH, ""))

    @property
    def passage(self) -> str:
        """What this chunk was embedded and BM25-indexed as."""
        return passage_text(self.title, self.section, self.text)


@dataclass(frozen=True)
class SearchQuery:
    """What to look for. With both vectors: each retriever's `candidates`, fused by weighted RRF."""

    dense: Sequence[float] | None
    sparse: SparseVector | None
    limit: int
    candidates: int = 100
    fusion: FusionMethod = FusionMethod.rrf
    rrf_k: int = 60
    dense_weight: float = 1.0
    sparse_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.dense is None and not self.has_sparse:
            raise ValueError("a search needs a dense vector, a non-empty sparse vector, or both")

    @property
    def has_sparse(self) -> bool:
        return self.sparse is not None and bool(self.sparse.indices)

    @property
    def is_hybrid(self) -> bool:
        return self.dense is not None and self.has_sparse


class VectorStore(Protocol):
    """The small interface both backends implement (Qdrant Edge in-process, Qdrant server)."""

    def ensure_collection(self, collection: str, space: VectorSpace) -> None:
        """Create the collection with dense + BM25 vectors and payload indexes if it does not exist; raise
        CollectionMismatchError if it exists with another embedder."""

    def vector_space(self, collection: str) -> VectorSpace | None:
        """The embedder recorded for an existing collection (None: no collection, or none recorded yet)."""

    def has_collection(self, collection: str) -> bool: ...

    def write_chunks(self, collection: str, chunks: Sequence[ChunkRecord], stale: Mapping[str, str]) -> None:
        """One atomic write: upsert `chunks` and turn the `stale` ids (id -> doc id) into tombstones."""

    def chunk_ids(self, collection: str, doc_ids: Sequence[str]) -> dict[str, set[str]]:
        """Ids of the visible chunks each document has in the store now."""

    def set_groups(self, collection: str, doc_id: str, groups: Sequence[str]) -> None:
        """Re-group one document's chunks without re-embedding them (one write)."""

    def delete_documents(self, collection: str, doc_ids: Sequence[str]) -> None: ...

    def purge_tombstones(self, collection: str) -> None: ...

    def finish_writes(self, collection: str) -> None:
        """Make writes durable and indexed (flush, optimise) at the end of a sync."""

    def doc_ids(self, collection: str) -> set[str]:
        """Every document with visible chunks in the collection (reads the doc id field only)."""

    def count(self, collection: str) -> int:
        """Visible chunks (tombstones excluded)."""

    def iter_chunks(self, collection: str) -> Iterator[StoredChunk]:
        """Every visible chunk, for maintenance and audits; never a path that serves a user's query."""

    def search(self, collection: str, principal: Principal, query: SearchQuery) -> list[StoredChunk]:
        """Chunks the principal may read, best first. The groups filter is part of every stage of the query."""

    def readable_doc_ids(self, collection: str, principal: Principal, doc_ids: Sequence[str]) -> set[str]:
        """The documents of `doc_ids` the principal may read now (a visible chunk of their groups; the groups
        filter is part of the query): what a conversation may still carry after a regroup or a delete."""

    def close(self) -> None: ...
