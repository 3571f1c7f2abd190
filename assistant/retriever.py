"""Retrieval for one principal: embed the question, search inside Qdrant with the groups filter, de-duplicate
per document, and decide whether anything readable supports an answer (the recall gate).

There is no way to call `search` without a `Principal`; the store puts the principal's groups into every stage
of the query, so chunks the caller may not read are never candidates, not filtered out afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from assistant.access import Principal
from assistant.embedder import Embedder
from assistant.recall_gate import Evidence, RecallGate, passage_text
from assistant.settings import RetrievalSettings, Settings
from assistant.sparse import Bm25Encoder
from assistant.store import SearchQuery, StoredChunk, VectorSpace, VectorStore
from assistant.store.base import check_space

Mode = Literal["hybrid", "dense", "bm25"]
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
        p = chunk.payload
        return cls(
            rank=rank,
            score=chunk.score,
            chunk_id=chunk.id,
            doc_id=chunk.doc_id,
            title=str(p.get("title", "")),
            path=str(p.get("path", "")),
            section=p.get("section"),
            groups=chunk.groups,
            text=str(p.get("text", "")),
        )


@dataclass(frozen=True)
class Retrieval:
    question: str
    principal: Principal
    chunks: list[RetrievedChunk]
    evidence: Evidence
    answerable: bool  # the recall gate's verdict: False means refuse, do not generate

    @property
    def doc_ids(self) -> list[str]:
        return [c.doc_id for c in self.chunks]


class Retriever:
    def __init__(
        self,
        store: VectorStore,
        collection: str,
        embedder: Embedder,
        bm25: Bm25Encoder,
        settings: RetrievalSettings,
        gate: RecallGate,
    ) -> None:
        self.store = store
        self.collection = collection
        self.embedder = embedder
        self.bm25 = bm25
        self.settings = settings
        self.gate = gate
        self._space_checked = False

    def search(
        self, principal: Principal, question: str, *, top_k: int | None = None, mode: Mode | None = None
    ) -> Retrieval:
        k = top_k or self.settings.top_k
        mode = mode or self.settings.mode
        self._check_space()
        dense = self.embedder.embed_query(question).tolist()
        sparse = self.bm25.embed_query(question)
        limit = k * DEDUP_OVERFETCH if self.settings.dedup_per_document else k
        use_dense = mode != "bm25"
        use_sparse = mode != "dense" and bool(sparse.indices)  # a question of stop words has no BM25 terms
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
            hits = _best_chunk_per_document(hits)
        chunks = [RetrievedChunk.from_stored(i + 1, h) for i, h in enumerate(hits[:k])]
        passages = [passage_text(c.title, c.section, c.text) for c in chunks[: self.gate.settings.passages]]
        evidence = self.gate.evidence(sparse.indices, self._best_similarity(principal, dense), passages)
        return Retrieval(question, principal, chunks, evidence, self.gate.allows(evidence, bool(chunks)))

    def _check_space(self) -> None:
        """Once: the question must be embedded by the embedder that built the collection, or scores mean nothing."""
        if self._space_checked:
            return
        recorded = self.store.vector_space(self.collection)
        if recorded is not None:  # none recorded yet (built by an older version): asked again until an ingest does
            check_space(self.collection, recorded, VectorSpace(self.embedder.model_id, self.embedder.dimension))
            self._space_checked = True

    def _best_similarity(self, principal: Principal, dense: list[float]) -> float:
        """The recall gate's evidence: how close the nearest chunk this principal may read is to the question."""
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


def build_retriever(
    settings: Settings, store: VectorStore, collection: str | None = None, embedder: Embedder | None = None
) -> Retriever:
    """Wire a retriever from settings; pass an already loaded embedder to share it."""
    bm25 = Bm25Encoder(settings.bm25)
    return Retriever(
        store=store,
        collection=collection or settings.store.collection,
        embedder=embedder or Embedder(settings.embedder),
        bm25=bm25,
        settings=settings.retrieval,
        gate=RecallGate(settings.recall_gate, bm25),
    )
