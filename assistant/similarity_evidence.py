"""Zero-shot evidence: the bundled MiniLM's cosine between the question and each sentence, calibrated.

all-MiniLM-L6-v2 was trained on a billion sentence pairs, question/answer pairs among them, so the cosine of a
question and a sentence already says much about whether the sentence answers it: on the evidence pairs' validation
split (`tuning/evidence_data.py`, never a held-out question) it ranks an answering sentence first for 71% of
answerable questions (AUC 0.82), where the cross-encoder trained from the same weights reached AUC 0.59 as a LoRA
and 0.86 (73%) trained whole, at 90 MB more (docs/tuning.md). The calibration maps a question's best cosine to the
probability that the blocks answer it, fitted on the training questions (answerable: some sentence of the pairs
answers it), so `evidence.min_score` 0.5 is the decision boundary; the same mapping scores each sentence. The
embedder is the retriever's: nothing more to load. Fitted by `assistant tune similarity-evidence`; served when
`evidence.scorer` names its folder (or when one is committed to `assistant/shipped_similarity/`: then for everyone,
by default).

Ranking reads more than the bare cosine (`ranking_figures`): the sentence is embedded after its block's heading
("title section: sentence", so "the EU rate" finds the sentence under "Per diem > Europe"), and the share of the
question's BM25 terms it holds is added, each term weighted by how rare it is among the candidate sentences (so
"4:15" or "EUR" counts for more than "policy"). On the development questions (`benchmarks/fact_stages.py`) this
put the answering sentence first for 0.688 of the everyday-language set and 0.796 of the curated items, where
the bare cosine did for 0.562 and 0.697 (docs/evaluation.md). The probabilities stay the calibrated cosine of
the bare sentence, so the answerability threshold and the labels mean what they meant.

The same cosine, under a second calibration fitted on (question, answer line) pairs (`answer_calibration`:
curated reference answers against other answers of their document and the parts of their quotes that say
something else), says whether an answer line answers its question: the answer verifier of
`assistant.answer_support`. A record without it verifies nothing (labels as before).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.access import Principal
from assistant.embedder import Embedder
from assistant.errors import ConfigError
from assistant.evidence import Calibration, ScoredSentence, rank_sentences
from assistant.json_file import read_json, write_json
from assistant.settings import EvidenceSettings
from assistant.sparse import Bm25Encoder

RECORD = "similarity-evidence.json"
RECORD_VERSION = 1
SHIPPED_SIMILARITY = Path(__file__).resolve().parent / "shipped_similarity"
FIT_COMMAND = "assistant tune similarity-evidence"


@dataclass(frozen=True)
class SimilarityRecord:
    """`similarity-evidence.json`: read by `read_similarity_record`, written by `write_similarity_record`."""

    embedder: str  # the embedder.model the calibration was fitted with
    calibration: Calibration  # best cosine of a question -> P(its blocks answer it)
    answer_calibration: Calibration | None = None  # cosine of (question, answer line) -> P(the line answers it)
    metrics: dict[str, Any] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)  # pairs file -> sha256
    created: str = ""
    git_commit: str = ""
    version: int = RECORD_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "embedder": self.embedder,
            "calibration": self.calibration.to_json(),
            "answer_calibration": self.answer_calibration.to_json() if self.answer_calibration else None,
            "metrics": self.metrics,
            "data": self.data,
            "created": self.created,
            "git_commit": self.git_commit,
        }


def read_similarity_record(folder: Path) -> SimilarityRecord:
    path = folder / RECORD
    try:
        data, version = read_json(path, reads=RECORD_VERSION)
        answers = data.get("answer_calibration")
        return SimilarityRecord(
            str(data["embedder"]),
            Calibration.from_json(data["calibration"]),
            Calibration.from_json(answers) if answers is not None else None,
            dict(data.get("metrics") or {}),
            {str(k): str(v) for k, v in (data.get("data") or {}).items()},
            str(data.get("created", "")),
            str(data.get("git_commit", "")),
            version,
        )
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing: fit one with `{FIT_COMMAND}`") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: not a similarity-evidence record ({exc}); fit it again: `{FIT_COMMAND}`") from exc


def write_similarity_record(folder: Path, record: SimilarityRecord) -> SimilarityRecord:
    write_json(folder / RECORD, record.to_json())
    return read_similarity_record(folder)


def cosines(embedder: Embedder, question: str, sentences: Sequence[str]) -> list[float]:
    if not sentences:
        return []
    vectors = embedder.embed_documents(list(sentences))
    return [float(x) for x in np.asarray(vectors @ embedder.embed_query(question), dtype=np.float64)]


def rare_term_share(bm25: Bm25Encoder, question: str, sentences: Sequence[str]) -> list[float]:
    """For each sentence, the share of the question's BM25 terms (stemmed, stop words out) it holds, each term
    weighted by its inverse frequency among `sentences` (BM25's IDF over the candidates, not the corpus: a term
    every candidate holds tells them apart no more than one none holds). 0.0 for a question of stop words."""
    terms = set(bm25.embed_query(question).indices)
    held = [terms & set(bm25.embed_document(sentence).indices) for sentence in sentences]
    count = len(sentences)
    weight = {}
    for term in terms:
        frequency = sum(term in h for h in held)
        weight[term] = math.log(1 + (count - frequency + 0.5) / (frequency + 0.5))
    total = sum(weight.values())
    return [sum(weight[t] for t in h) / total if total else 0.0 for h in held]


class SimilarityScorer:
    """Calibrated question/sentence cosines, as a `SentenceScorer` for the answer pipeline; ranked by the cosine
    of the sentence under its heading plus `evidence.term_weight` times its share of the question's rare terms."""

    def __init__(
        self,
        record: SimilarityRecord,
        embedder: Embedder,
        bm25: Bm25Encoder | None = None,
        settings: EvidenceSettings | None = None,
    ) -> None:
        if record.embedder != embedder.settings.model:
            raise ConfigError(
                f"the similarity evidence was fitted with embedder {record.embedder}, but embedder.model is "
                f"{embedder.settings.model}: fit it again (`{FIT_COMMAND}`) or set evidence.enabled=false"
            )
        self.record = record
        self.embedder = embedder
        self.bm25 = bm25  # None: ranked by the calibrated cosine alone
        self.settings = settings or EvidenceSettings()

    def score(self, question: str, sentences: Sequence[str]) -> list[float]:
        return [self.record.calibration.probability(c) for c in cosines(self.embedder, question, sentences)]

    def rank(self, question: str, blocks: Sequence[str], headings: Sequence[str] = ()) -> list[ScoredSentence]:
        return rank_sentences(self.score, question, blocks, order=self.ranking_figures, headings=headings)

    def ranking_figures(self, question: str, sentences: Sequence[tuple[str, str]]) -> list[float]:
        """What orders the (heading, sentence) pairs: the cosine of "heading: sentence" (of the sentence alone
        with `evidence.sentence_context` off) plus `term_weight` times `rare_term_share`."""
        texts = [f"{h}: {s}" if h and self.settings.sentence_context else s for h, s in sentences]
        figures = cosines(self.embedder, question, texts)
        if self.bm25 is not None and self.settings.term_weight > 0:
            shares = rare_term_share(self.bm25, question, [s for _, s in sentences])
            figures = [f + self.settings.term_weight * share for f, share in zip(figures, shares, strict=True)]
        return figures

    def answer_score(self, question: str, answer_line: str) -> float | None:
        calibration = self.record.answer_calibration
        if calibration is None or not answer_line.strip():
            return None
        return calibration.probability(cosines(self.embedder, question, [answer_line])[0])

    def servable_to(self, principal: Principal) -> bool:
        return True  # two numbers fitted on pairs: it holds no document text to leak
