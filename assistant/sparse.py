"""BM25 sparse vectors computed with Qdrant's own BM25 model (tokenizer, stop words, stemmer).

Documents get term-frequency weights; queries get 1.0 per unique term. The IDF half of BM25 is applied inside
Qdrant (the sparse vector is declared with the IDF modifier), so it always reflects the live collection.
"""

from __future__ import annotations

from dataclasses import dataclass

from qdrant_edge import Bm25, Bm25Config

from assistant.settings import Bm25Settings


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]


class Bm25Encoder:
    def __init__(self, settings: Bm25Settings) -> None:
        self._model = Bm25(Bm25Config(k=settings.k, b=settings.b, avg_len=settings.avg_len, language=settings.language))
        self.fingerprint = f"bm25(k={settings.k},b={settings.b},avg_len={settings.avg_len},{settings.language})"

    def embed_document(self, text: str) -> SparseVector:
        vector = self._model.embed_document(text)
        return SparseVector(indices=list(vector.indices), values=list(vector.values))

    def embed_query(self, text: str) -> SparseVector:
        vector = self._model.embed_query(text)
        return SparseVector(indices=list(vector.indices), values=list(vector.values))
