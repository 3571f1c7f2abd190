"""The recall check: is there an approved source for this question, or should the assistant refuse?

Evidence combines two signals from what the principal may read: the cosine similarity of the closest chunk
(meaning) and the share of the question's BM25 terms that the best retrieved chunks contain (names, codes and
numbers a small embedder blurs). `evidence = similarity + coverage_weight * coverage`; the assistant answers
only when it reaches `min_evidence`. Both constants are calibrated with `assistant eval gate` on answerable and
unanswerable questions. Not covered: whether the chunk really states the answer (the answer step checks that).

Questions in everyday words ("how many paid hols do us ppl get") share few terms with the document that answers
them, so the evidence score misses them. With `defer_to_evidence` (off by default), the gate never refuses a
question whose first-ranked sentence the evidence scorer accepts (its calibrated probability reaches
`evidence.min_score`). Measured on the development sets, today's scorer accepts near-miss unanswerable questions
as readily as answerable ones in everyday words, so it stays off (docs/evaluation.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.settings import RecallGateSettings
from assistant.sparse import Bm25Encoder

if TYPE_CHECKING:
    from assistant.retriever import Retrieval


@dataclass(frozen=True)
class Evidence:
    similarity: float  # cosine of the closest readable chunk; -1 when the principal can read nothing
    coverage: float  # best share of the question's BM25 terms found in one retrieved chunk, 0..1
    score: float


@dataclass(frozen=True)
class RecallCheck:
    """The gate's verdict on one retrieval: answer (`answerable`) or refuse."""

    evidence: Evidence
    threshold: float
    answerable: bool
    vouched: bool = False  # below the threshold, answered because the evidence scorer accepts the first sentence


class RecallGate:
    def __init__(self, settings: RecallGateSettings, bm25: Bm25Encoder) -> None:
        self.settings = settings
        self.bm25 = bm25

    def check(self, retrieval: Retrieval, first_sentence_accepted: bool = False) -> RecallCheck:
        """`first_sentence_accepted`: the evidence scorer accepts the sentence it ranks first (False: no scorer)."""
        evidence = self.evidence(retrieval)
        above = bool(retrieval.chunks) and evidence.score >= self.settings.min_evidence
        vouched = not above and bool(retrieval.chunks) and first_sentence_accepted and self.settings.defer_to_evidence
        return RecallCheck(evidence, self.settings.min_evidence, above or vouched, vouched)

    def evidence(self, retrieval: Retrieval) -> Evidence:
        terms = set(retrieval.query_terms)
        coverage = 0.0
        if terms:
            for chunk in retrieval.chunks[: self.settings.passages]:
                found = terms & set(self.bm25.embed_document(chunk.passage).indices)
                coverage = max(coverage, len(found) / len(terms))
        similarity = retrieval.nearest_similarity
        return Evidence(similarity, coverage, similarity + self.settings.coverage_weight * coverage)
