"""The recall check: is there an approved source for this question, or should the assistant refuse?

Evidence combines two signals from what the principal may read: the cosine similarity of the closest chunk
(meaning) and the share of the question's BM25 terms that the best retrieved chunks contain (names, codes and
numbers a small embedder blurs). `evidence = similarity + coverage_weight * coverage`; the assistant answers
only when it reaches `min_evidence`. Both constants are calibrated with `assistant eval gate` on answerable and
unanswerable questions. Not covered: whether the chunk really states the answer (the answer step checks that).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from assistant.settings import RecallGateSettings
from assistant.sparse import Bm25Encoder


def passage_text(title: str, section: str | None, body: str) -> str:
    """The text a chunk is embedded and BM25-indexed as: title and section heading, then the chunk itself."""
    header = title if not section else f"{title}\n{section}"
    return f"{header}\n\n{body}"


@dataclass(frozen=True)
class Evidence:
    similarity: float  # cosine of the closest readable chunk; -1 when the principal can read nothing
    coverage: float  # best share of the question's BM25 terms found in one retrieved chunk, 0..1
    score: float


class RecallGate:
    def __init__(self, settings: RecallGateSettings, bm25: Bm25Encoder) -> None:
        self.settings = settings
        self.bm25 = bm25

    def evidence(self, question_terms: Collection[int], similarity: float, passages: Sequence[str]) -> Evidence:
        """`question_terms`: the BM25 term ids of the question (its sparse query vector's indices)."""
        terms = set(question_terms)
        coverage = 0.0
        if terms:
            for passage in passages:
                found = terms & set(self.bm25.embed_document(passage).indices)
                coverage = max(coverage, len(found) / len(terms))
        return Evidence(similarity, coverage, similarity + self.settings.coverage_weight * coverage)

    def allows(self, evidence: Evidence, retrieved_anything: bool) -> bool:
        return retrieved_anything and evidence.score >= self.settings.min_evidence
