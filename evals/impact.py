"""The re-ingest impact report: what a sync did to the golden questions of the collection it changed.

Before the sync, the golden questions expecting a document the sync changes, deletes or re-groups are ranked
as their askers (a query each; the others are skipped and counted), and each document's content hash and groups
are noted. After it, the same questions are ranked again. The report lists, per touched question: recall@k and the rank
of the first expected document before and after; expected documents that were deleted (a stale golden item) or
moved (deleted here and added under another id with the same content: the item should point there); and
expected documents its asker can no longer read (re-grouped away from them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from assistant.access import Principal
from assistant.components import Components
from assistant.errors import AssistantError
from assistant.retriever import Retriever
from assistant.settings import Settings
from assistant.tracing import Tracer
from evals.datasets import EvalQuery, EvalSet, load_golden
from evals.run_files import save_run
from ingestion.state import DocumentState
from ingestion.summary import SyncSummary

RANKED = 10  # documents kept per question: recall@10, and the rank of the first expected one within them


@dataclass(frozen=True)
class DocumentFacts:
    content_hash: str
    groups: tuple[str, ...]


@dataclass
class Baseline:
    """The golden set's rankings and the collection's documents, taken just before a sync."""

    golden: EvalSet
    rankings: dict[str, list[str]]  # qid -> document ids, best first
    documents: dict[str, DocumentFacts]
    skipped: int = 0  # golden questions not ranked: they expect none of the documents the sync touches


@dataclass
class ImpactItem:
    qid: str
    question: str
    groups: list[str]
    expected: list[str]
    touched: dict[str, str]  # expected doc id -> changed, deleted or regrouped
    recall_before: float
    recall_after: float
    rank_before: int | None  # of the first expected document within the top RANKED; None: not there
    rank_after: int | None
    deleted: list[str] = field(default_factory=list)  # expected documents gone: the golden item is stale
    moved: dict[str, str] = field(default_factory=dict)  # expected id -> the id its content has now
    unreadable: list[str] = field(default_factory=list)  # expected documents the asker can no longer read

    @property
    def change(self) -> float:
        return self.recall_after - self.recall_before


@dataclass
class ImpactReport:
    collection: str
    golden: str
    questions: int  # golden questions checked before the sync
    items: list[ImpactItem]
    skipped: int = 0  # golden questions not re-asked: they expect none of the documents the sync touched
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))

    @property
    def worse(self) -> list[ImpactItem]:
        return [i for i in self.items if i.change < -1e-9]

    @property
    def better(self) -> list[ImpactItem]:
        return [i for i in self.items if i.change > 1e-9]

    @property
    def stale(self) -> list[ImpactItem]:
        return [i for i in self.items if i.deleted or i.moved]

    @property
    def unreadable(self) -> list[ImpactItem]:
        return [i for i in self.items if i.unreadable]

    def counts(self) -> dict[str, int]:
        return {
            "touched": len(self.items),
            "worse": len(self.worse),
            "better": len(self.better),
            "stale": len(self.stale),
            "unreadable": len(self.unreadable),
        }

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "counts": self.counts()}

    def save(self, folder: Path) -> Path:
        return save_run(folder, self.created, f"-{self.collection}-impact.json", self.to_json())

    def render(self, console: Console) -> None:
        counts = self.counts()
        console.print(
            f"golden set {escape(str(self.golden))}: {counts['touched']} of {self.questions} questions touched by "
            f"this sync ({self.skipped} more not re-asked: they expect none of the documents it changed); "
            f"recall@{RANKED} worse for {counts['worse']}, better for {counts['better']}; "
            f"{counts['stale']} stale, {counts['unreadable']} no longer readable by their asker",
            highlight=False,
        )
        if not self.items:
            return
        table = Table(show_header=True, header_style="bold")
        for column in ("question", "touched", f"recall@{RANKED}", "rank", "needs"):
            table.add_column(column)
        for item in sorted(self.items, key=lambda i: (i.change, i.qid)):
            table.add_row(  # questions and ids are data, not markup
                escape(item.question[:70]),
                escape(", ".join(f"{doc} ({how})" for doc, how in item.touched.items())),
                f"{item.recall_before:.2f} -> {item.recall_after:.2f}",
                f"{item.rank_before or '-'} -> {item.rank_after or '-'}",
                escape(_needs(item)),
            )
        console.print(table)


def _needs(item: ImpactItem) -> str:
    needs = [f"point at {new} (moved from {old})" for old, new in item.moved.items()]
    needs += [f"{doc} was deleted" for doc in item.deleted if doc not in item.moved]
    needs += [f"asker cannot read {doc}" for doc in item.unreadable]
    return "; ".join(needs)


def _rank(retriever: Retriever, query: EvalQuery) -> list[str]:
    principal = Principal.of(f"impact:{query.qid}", list(query.groups))
    hits = retriever.search(principal, query.text, top_k=RANKED).doc_ids
    return list(dict.fromkeys(hits))[:RANKED]


def _recall(ranking: Sequence[str], expected: Sequence[str]) -> tuple[float, int | None]:
    found = [ranking.index(d) + 1 for d in expected if d in ranking]
    return (len(found) / len(expected) if expected else 0.0), (min(found) if found else None)


def expecting(golden: EvalSet, touched: set[str]) -> list[EvalQuery]:
    """The golden questions expecting a `touched` document: the only ones a sync can move in the report."""
    return [q for q in golden.queries if touched & set(q.relevant)]


def take_baseline(
    retriever: Retriever, golden: EvalSet, documents: Mapping[str, DocumentFacts], touched: set[str]
) -> Baseline:
    """Rank the golden questions `expecting` a touched document: the report compares only those, so a
    one-document edit re-asks a handful, not the whole set."""
    asked = expecting(golden, touched)
    rankings = {q.qid: _rank(retriever, q) for q in asked}
    skipped = sum(1 for q in golden.queries if q.relevant) - len(asked)
    return Baseline(golden, rankings, dict(documents), skipped=skipped)


def report_impact(
    retriever: Retriever,
    baseline: Baseline,
    documents: Mapping[str, DocumentFacts],
    *,
    changed: Sequence[str],
    deleted: Sequence[str],
    regrouped: Sequence[str],
    added: Sequence[str],
) -> ImpactReport:
    """Compare the golden questions touched by the sync (`changed`, `deleted`, `regrouped`: document ids) with
    the baseline; `documents` is the collection after the sync."""
    how = {d: "changed" for d in changed} | {d: "regrouped" for d in regrouped} | {d: "deleted" for d in deleted}
    new_home = {documents[d].content_hash: d for d in added if d in documents}
    items = []
    for query in baseline.golden.queries:
        expected = sorted(query.relevant)
        touched = {d: how[d] for d in expected if d in how}
        if not touched or query.qid not in baseline.rankings:
            continue
        before = baseline.rankings[query.qid]
        after = _rank(retriever, query)
        recall_before, rank_before = _recall(before, expected)
        recall_after, rank_after = _recall(after, expected)
        gone = [d for d in expected if d not in documents]
        moved = {
            d: new_home[baseline.documents[d].content_hash]
            for d in gone
            if d in baseline.documents and baseline.documents[d].content_hash in new_home
        }
        unreadable = [d for d in expected if d in documents and not set(documents[d].groups) & set(query.groups)]
        items.append(
            ImpactItem(
                query.qid,
                query.text,
                list(query.groups),
                expected,
                touched,
                recall_before,
                recall_after,
                rank_before,
                rank_after,
                deleted=gone,
                moved=moved,
                unreadable=unreadable,
            )
        )
    return ImpactReport(
        retriever.collection, baseline.golden.name, len(baseline.rankings), items, skipped=baseline.skipped
    )


def latest_report(folder: Path, collection: str) -> dict[str, Any] | None:
    """The newest saved report of `collection` (the corpus page shows it)."""
    paths = sorted(folder.glob(f"*-{collection}-impact.json"))
    return json.loads(paths[-1].read_text(encoding="utf-8")) if paths else None


class GoldenImpact:
    """Hooks one sync (`ingestion.run.run_ingest(watcher=...)`): the baseline before it, the report after it.
    A failure here never fails the sync: it is kept in `error` and the report is left out."""

    def __init__(self, golden: EvalSet) -> None:
        self.golden = golden
        self.baseline: Baseline | None = None
        self.report: ImpactReport | None = None
        self.error: str | None = None

    def before_sync(self, retriever: Retriever, documents: Mapping[str, DocumentState], touched: set[str]) -> None:
        if not documents:
            return  # a first ingest: nothing to compare with
        try:
            self.baseline = take_baseline(retriever, self.golden, facts(documents), touched)
        except AssistantError as exc:
            self.error = str(exc)

    def after_sync(self, retriever: Retriever, summary: SyncSummary, documents: Mapping[str, DocumentState]) -> None:
        if self.baseline is None or summary.dry_run or not (summary.changed or summary.deleted or summary.regrouped):
            return
        try:
            self.report = report_impact(
                retriever,
                self.baseline,
                facts(documents),
                changed=summary.changed,
                deleted=summary.deleted,
                regrouped=summary.regrouped,
                added=summary.added,
            )
        except AssistantError as exc:
            self.error = str(exc)

    def finish(self, components: Components, console: Console) -> None:
        """After the sync summary (`assistant ingest`): the report, saved and published, or why there is none."""
        if self.report is not None:
            self.report.render(console)
            console.print(f"impact report saved to {publish(self.report, components.settings, components.tracer)}")
        elif self.error:
            console.print(f"[yellow]no impact report: {escape(self.error)}[/yellow]", highlight=False)

    def to_json(self) -> dict[str, Any]:
        return {}  # the report has its own file (`publish`), which the corpus page reads


def facts(documents: Mapping[str, DocumentState]) -> dict[str, DocumentFacts]:
    return {doc_id: DocumentFacts(d.content_hash, tuple(d.groups)) for doc_id, d in documents.items()}


def watcher_for(settings: Settings, collection: str | None) -> GoldenImpact | None:
    """The configured golden set's watcher, for syncs of store.collection when the golden file exists (entry point
    `golden-impact` of `assistant.sync_watchers`)."""
    golden = settings.review.golden
    if (collection or settings.store.collection) != settings.store.collection or not golden.is_file():
        return None
    return GoldenImpact(load_golden(golden))


def publish(report: ImpactReport, settings: Settings, tracer: Tracer) -> Path:
    """Save the report next to the eval runs (the corpus page reads it) and send it to Langfuse when tracing is
    on: a trace named `ingest-impact` with the report (questions and document ids, no document text) and its
    counts as scores."""
    path = report.save(settings.eval_runs_dir)
    if tracer.enabled:
        tracer.record(
            "ingest-impact",
            {"collection": report.collection, "golden": report.golden},
            report.to_json(),
            {f"impact-{name}": float(count) for name, count in report.counts().items()},
        )
    return path
