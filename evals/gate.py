"""Calibrate the recall gate: on questions that should be answered and questions that should be refused, how
well does "similarity + weight * term coverage >= threshold" separate them, and which weight and threshold
separate them best?

Should-refuse questions are of two kinds: out-of-corpus questions, and golden questions asked by a user who may
not read any of their relevant documents (the answer exists, but not for them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from assistant.access import Principal
from assistant.progress import NO_PROGRESS, Progress
from assistant.recall_gate import RecallGate
from assistant.retriever import Retriever
from assistant.settings import RecallGateSettings
from evals.datasets import EvalSet

OUTSIDER_GROUPS = ("everyone",)  # a plain employee: asks the golden questions again as this principal


@dataclass(frozen=True)
class GateSample:
    question: str
    groups: tuple[str, ...]
    should_refuse: bool
    similarity: float
    coverage: float

    def evidence(self, weight: float) -> float:
        return self.similarity + weight * self.coverage


@dataclass(frozen=True)
class GateScore:
    weight: float
    threshold: float
    refusal_precision: float
    refusal_recall: float
    false_refusals: int
    missed_refusals: int

    @property
    def f1(self) -> float:
        p, r = self.refusal_precision, self.refusal_recall
        return 2 * p * r / (p + r) if p + r else 0.0


def collect(
    retriever: Retriever,
    gate: RecallGate,
    answerable: EvalSet,
    unanswerable: EvalSet,
    progress: Progress = NO_PROGRESS,
) -> list[GateSample]:
    readable_by = _document_groups(retriever)
    progress.start("questions", len(answerable.queries) + len(unanswerable.queries))

    def sample(question: str, groups: tuple[str, ...], should_refuse: bool) -> GateSample:
        evidence = gate.evidence(retriever.search(Principal.of("gate-calibration", list(groups)), question))
        progress.advance("questions")
        return GateSample(question, groups, should_refuse, evidence.similarity, evidence.coverage)

    samples = []
    for q in answerable.queries:
        samples.append(sample(q.text, q.groups, should_refuse=False))
        hidden = not any(set(readable_by.get(doc, ())) & set(OUTSIDER_GROUPS) for doc in q.relevant)
        if hidden:
            samples.append(sample(q.text, OUTSIDER_GROUPS, should_refuse=True))
    samples += [sample(q.text, q.groups, should_refuse=True) for q in unanswerable.queries]
    progress.finish("questions")  # an outsider's second asking went past the total: the bar ends full
    return samples


def score(samples: list[GateSample], threshold: float, weight: float) -> GateScore:
    refused = [s for s in samples if s.evidence(weight) < threshold]
    right = sum(s.should_refuse for s in refused)
    should = sum(s.should_refuse for s in samples)
    return GateScore(
        weight=weight,
        threshold=threshold,
        refusal_precision=right / len(refused) if refused else 1.0,
        refusal_recall=right / should if should else 1.0,
        false_refusals=len(refused) - right,
        missed_refusals=should - right,
    )


WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


def best_threshold(samples: list[GateSample]) -> GateScore:
    """The weight and threshold with the best F1 of refusals, ties broken towards fewer false refusals."""
    scores = [score(samples, round(s.evidence(w) + 1e-6, 6), w) for w in WEIGHTS for s in samples]
    return max(scores, key=lambda s: (round(s.f1, 9), -s.false_refusals))


def report(samples: list[GateSample], settings: RecallGateSettings, console: Console) -> dict[str, Any]:
    """Print the configured and the best-F1 gate on `samples`; return both with the samples (for --json)."""
    configured = score(samples, settings.min_evidence, settings.coverage_weight)
    best = best_threshold(samples)
    table = Table(title=f"recall gate on {len(samples)} questions ({sum(s.should_refuse for s in samples)} to refuse)")
    for column in ("", "weight", "threshold", "refusal precision", "refusal recall", "false refusals", "missed"):
        table.add_column(column)
    for label, s in (("configured", configured), ("best F1", best)):
        table.add_row(
            label,
            f"{s.weight:.2f}",
            f"{s.threshold:.3f}",
            f"{s.refusal_precision:.3f}",
            f"{s.refusal_recall:.3f}",
            str(s.false_refusals),
            str(s.missed_refusals),
        )
    console.print(table)
    return {"configured": vars(configured), "best": vars(best), "samples": [vars(s) for s in samples]}


def _document_groups(retriever: Retriever) -> dict[str, tuple[str, ...]]:
    """Groups of every indexed document (a maintenance read of the index, not a user's query)."""
    return {c.doc_id: c.groups for c in retriever.store.iter_chunks(retriever.collection)}
