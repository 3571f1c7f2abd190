"""Retrieval for one principal: embed the question, search inside Qdrant with the groups filter, de-duplicate
per document, and measure how close the nearest readable chunk is (for the recall gate, which the answer step
calls next).

There is no way to call `search` without a `Principal`; the store puts the principal's groups into every stage
of the query, so chunks the caller may not read are never candidates, not filtered out afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from assistant.access import Principal
from assistant.embedder import Embedder
from assistant.errors import QuestionTooLongError
from assistant.settings import RetrievalMode, RetrievalSettings
from assistant.sparse import Bm25Encoder
from assistant.store import SearchQuery, StoredChunk, VectorSpace, VectorStore
from assistant.store.base import check_space, passage_text

DEDUP_OVERFETCH = 3  # chunks fetched per wanted document when de-duplicating


@dataclass(frozen=True)
class RetrievedChunk:
    rank: int
    score: float
    chunk_id: str
    doc_id: str
    title: str
    path: str
    section: str | None
    groups: tuple[str, ...]
    text: str

    @classmethod
    def from_stored(cls, rank: int, chunk: StoredChunk) -> RetrievedChunk:
        return cls(
            rank=rank,
            score=chunk.score,
            chunk_id=chunk.id,
            doc_id=chunk.doc_id,
            title=chunk.title,
            path=chunk.path,
            section=chunk.section,
            groups=chunk.groups,
            text=chunk.text,
        )

    @property
    def passage(self) -> str:
        """What the chunk was embedded and BM25-indexed as."""
        return passage_text(self.title, self.section, self.text)


@dataclass(frozen=True)
class Retrieval:
    question: str
    principal: Principal
    chunks: list[RetrievedChunk]
    query_terms: tuple[int, ...]  # the question's BM25 term ids (empty for a question of stop words)
    nearest_similarity: float  # cosine of the closest chunk the principal may read; -1 when they read nothing

    @property
    def doc_ids(self) -> list[str]:
        return [c.doc_id for c in self.chunks]


class Retriever:
    def __init__(
        self, store: VectorStore, collection: str, embedder: Embedder, bm25: Bm25Encoder, settings: RetrievalSettings
    ) -> None:
        self.store = store
        self.collection = collection
        self.embedder = embedder
        self.bm25 = bm25
        self.settings = settings
        self._space_checked = False

    def search(
        self, principal: Principal, question: str, *, top_k: int | None = None, mode: RetrievalMode | None = None
    ) -> Retrieval:
        check_question(question, self.settings.max_question_chars)
        k = top_k or self.settings.top_k
        mode = mode or self.settings.mode
        self._check_space()
        dense = self.embedder.embed_query(question).tolist()
        sparse = self.bm25.embed_query(question)
        limit = k * DEDUP_OVERFETCH * self.settings.chunks_per_document if self.settings.dedup_per_document else k
        use_dense = mode != RetrievalMode.bm25
        use_sparse = mode != RetrievalMode.dense and bool(sparse.indices)  # stop words only: no BM25 terms
        hits: list[StoredChunk] = []
        if use_dense or use_sparse:
            query = SearchQuery(
                dense=dense if use_dense else None,
                sparse=sparse if use_sparse else None,
                limit=limit,
                candidates=max(self.settings.candidates, limit),
                fusion=self.settings.fusion,
                rrf_k=self.settings.rrf_k,
                dense_weight=self.settings.dense_weight,
                sparse_weight=self.settings.sparse_weight,
            )
            hits = self.store.search(self.collection, principal, query)
        if self.settings.score_threshold is not None:
            hits = [h for h in hits if h.score >= self.settings.score_threshold]
        if self.settings.dedup_per_document:
            best = _best_chunk_per_document(hits)[:k]
            hits = best + _more_passages(hits, best, self.settings.passage_documents, self.settings.chunks_per_document)
        else:
            hits = hits[:k]
        chunks = [RetrievedChunk.from_stored(i + 1, h) for i, h in enumerate(hits)]
        return Retrieval(question, principal, chunks, tuple(sparse.indices), self._nearest(principal, dense))

    def readable_doc_ids(self, principal: Principal, doc_ids: Iterable[str]) -> set[str]:
        """The documents of `doc_ids` the principal may read now, asked of the store with the groups filter."""
        wanted = sorted(set(doc_ids))
        return self.store.readable_doc_ids(self.collection, principal, wanted) if wanted else set()

    def _check_space(self) -> None:
        """Once: the question must be embedded by the embedder that built the collection, or scores mean nothing."""
        if self._space_checked:
            return
        recorded = self.store.vector_space(self.collection)
        if recorded is not None:  # none recorded yet (built by an older version): asked again until an ingest does
            check_space(self.collection, recorded, VectorSpace(self.embedder.model_id, self.embedder.dimension))
            self._space_checked = True

    def _nearest(self, principal: Principal, dense: list[float]) -> float:
        """How close the nearest chunk this principal may read is to the question (dense only, unfused)."""
        nearest = self.store.search(self.collection, principal, SearchQuery(dense=dense, sparse=None, limit=1))
        return nearest[0].score if nearest else -1.0


def _best_chunk_per_document(hits: list[StoredChunk]) -> list[StoredChunk]:
    seen: set[str] = set()
    unique = []
    for hit in hits:
        if hit.doc_id not in seen:
            seen.add(hit.doc_id)
            unique.append(hit)
    return unique


def _more_passages(
    hits: list[StoredChunk], best: list[StoredChunk], documents: int, per_document: int
) -> list[StoredChunk]:
    """The next-best chunks of the first `documents` documents of `best` (up to `per_document` chunks each, the
    best one included), in fused-score order: the passages after the document ranking, which they leave as it is."""
    wanted = {chunk.doc_id: per_document - 1 for chunk in best[:documents]}
    taken = {chunk.id for chunk in best}
    more = []
    for hit in hits:
        if wanted.get(hit.doc_id, 0) > 0 and hit.id not in taken:
            wanted[hit.doc_id] -= 1
            more.append(hit)
    return more


def check_question(question: str, limit: int) -> None:
    """Refuse a question past `limit` characters (a paste of a whole document, or an attack on the log and the model)
    before any part of it is searched, logged, traced or sent to the model."""
    if len(question) > limit:
        raise QuestionTooLongError(
            f"the question is {len(question):,} characters long, over the {limit:,} the assistant reads "
            "(retrieval.max_question_chars); ask it in fewer words"
        )
