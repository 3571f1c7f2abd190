"""Retrieval evaluation: rank documents for every query as its asker, score the ranking, save the run, and
compare it with an earlier one.

A run is a JSON file in `ASSISTANT_DATA_DIR/eval-runs/` holding the aggregate, every query's metrics and top
documents, and the retrieval settings used, so two runs can be compared query by query.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assistant.access import Principal
from assistant.progress import NO_PROGRESS, Progress
from assistant.retriever import Retriever
from assistant.settings import RetrievalMode
from evals.datasets import EvalQuery, EvalSet
from evals.metrics import mean_scores, score_query
from evals.run_files import save_run

RANK_DEPTH = 100  # documents ranked per query (Recall@100 needs 100)


@dataclass
class QueryResult:
    qid: str
    question: str
    metrics: dict[str, float]
    top: list[str]  # first ten document ids
    relevant: list[str]


@dataclass
class EvalRun:
    dataset: str
    split: str | None
    mode: str
    settings: dict[str, Any]
    aggregate: dict[str, float]
    queries: list[QueryResult]
    seconds: float
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))
    collection: str | None = None  # where the documents are (who may read them: `evals.saved_runs.redact_runs`)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(self.aggregate)  # top-level "ndcg@10", "recall@10", ... for tools
        return data

    @classmethod
    def of(
        cls, dataset: EvalSet, retriever: Retriever, mode: RetrievalMode, results: list[QueryResult], seconds: float
    ) -> EvalRun:
        aggregate = mean_scores([r.metrics for r in results])
        settings = retriever.settings.model_dump()
        return cls(
            dataset.name,
            dataset.split,
            mode.value,
            settings,
            aggregate,
            results,
            seconds,
            collection=retriever.collection,
        )

    def save(self, folder: Path) -> Path:
        return save_run(folder, self.created, f"-{self.dataset}-{self.split or 'all'}-{self.mode}.json", self.to_json())


def evaluate(retriever: Retriever, dataset: EvalSet, mode: RetrievalMode, progress: Progress = NO_PROGRESS) -> EvalRun:
    started = time.perf_counter()
    progress.start("queries", len(dataset.queries))
    results = []
    for query in dataset.queries:
        result = evaluate_query(retriever, query, mode)
        if result is not None:
            results.append(result)
        progress.advance("queries")
    progress.finish("queries")
    return EvalRun.of(dataset, retriever, mode, results, time.perf_counter() - started)


def evaluate_query(retriever: Retriever, query: EvalQuery, mode: RetrievalMode) -> QueryResult | None:
    """One query ranked as its asker; None for an out-of-corpus question (it measures the recall gate)."""
    if not query.relevant:
        return None
    principal = Principal.of(f"eval:{query.qid}", list(query.groups))
    hits = retriever.search(principal, query.text, top_k=RANK_DEPTH, mode=mode).doc_ids
    ranking = list(dict.fromkeys(hits))  # documents, not chunks, even with de-duplication off
    return QueryResult(
        query.qid, query.text, score_query(ranking, query.relevant), ranking[:10], sorted(query.relevant)
    )


def load_run(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def regressions(run: EvalRun, baseline: dict[str, Any], metric: str = "ndcg@10") -> list[dict[str, Any]]:
    """Queries whose `metric` dropped against `baseline`, worst first."""
    before = {q["qid"]: q["metrics"][metric] for q in baseline["queries"]}
    worse = [
        {"qid": q.qid, "question": q.question, "before": before[q.qid], "after": q.metrics[metric]}
        for q in run.queries
        if q.qid in before and q.metrics[metric] < before[q.qid] - 1e-9
    ]
    return sorted(worse, key=lambda w: w["after"] - w["before"])
