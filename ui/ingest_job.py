"""A re-ingest started from the app runs in a background thread of the app process, not in the page's script:
leaving the page does not cut it short, chat sessions keep answering meanwhile (from the old version of each
document until its new version is written), and every corpus owner sees the one running job and its progress.

Progress covers every phase, the impact report's too: ranking the golden questions before the sync and the
touched ones after it can take longer than the sync itself. The job's time is its wall time, start to end, impact
report included (`SyncSummary.seconds` is the sync's own phases only)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from assistant.access import Principal
from assistant.components import Components
from assistant.retriever import Retrieval, Retriever
from evals.impact import GoldenImpact, ImpactReport, expecting, publish, watcher_for
from ingestion.priority import lower_this_thread
from ingestion.run import run_ingest
from ingestion.state import DocumentState
from ingestion.summary import SyncSummary

BEFORE = "golden questions before the sync"
AFTER = "golden questions after the sync"


class JobProgress:
    """The `Progress` protocol, readable from another thread: task -> (done, total)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.tasks: dict[str, tuple[int, int]] = {}
        self.finished: set[str] = set()

    def start(self, task: str, total: int) -> None:
        with self._lock:
            self.tasks[task] = (0, total)

    def advance(self, task: str, steps: int = 1) -> None:
        with self._lock:
            done, total = self.tasks.get(task, (0, 0))
            self.tasks[task] = (done + steps, total)

    def finish(self, task: str) -> None:
        with self._lock:
            _, total = self.tasks.get(task, (0, 0))
            self.tasks[task] = (total, total)
            self.finished.add(task)

    def snapshot(self) -> dict[str, tuple[int, int]]:
        with self._lock:
            return dict(self.tasks)

    def fraction(self, task: str) -> float:
        """How far `task` is, 0..1; a finished task is whole even with no steps (a phase with nothing to do)."""
        with self._lock:
            done, total = self.tasks.get(task, (0, 0))
            if task in self.finished:
                return 1.0
            return min(done / total, 1.0) if total else 0.0


class _CountingRetriever:
    """A retriever that advances `task` once per search: the impact watcher's rankings, as progress."""

    def __init__(self, retriever: Retriever, progress: JobProgress, task: str) -> None:
        self._retriever = retriever
        self._progress = progress
        self._task = task

    def search(self, principal: Principal, question: str, **options: Any) -> Retrieval:
        found = self._retriever.search(principal, question, **options)
        self._progress.advance(self._task)
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._retriever, name)


class WatchedPhases:
    """The impact watcher, with its two phases reported to `progress` like the sync's own."""

    def __init__(self, watcher: GoldenImpact, progress: JobProgress) -> None:
        self.watcher = watcher
        self.progress = progress

    def before_sync(self, retriever: Retriever, documents: dict[str, DocumentState], touched: set[str]) -> None:
        ranked = len(expecting(self.watcher.golden, touched)) if documents else 0
        self._phase(BEFORE, ranked, lambda r: self.watcher.before_sync(r, documents, touched), retriever)

    def after_sync(self, retriever: Retriever, summary: SyncSummary, documents: dict[str, DocumentState]) -> None:
        baseline = self.watcher.baseline
        touched = set(summary.changed) | set(summary.deleted) | set(summary.regrouped)
        ranked = 0
        if baseline is not None and not summary.dry_run:
            ranked = sum(1 for q in baseline.golden.queries if q.qid in baseline.rankings and touched & set(q.relevant))
        self._phase(AFTER, ranked, lambda r: self.watcher.after_sync(r, summary, documents), retriever)

    def _phase(self, task: str, total: int, call: Callable[[Retriever], None], retriever: Retriever) -> None:
        self.progress.start(task, total)
        try:
            call(cast(Retriever, _CountingRetriever(retriever, self.progress, task)))
        finally:
            self.progress.finish(task)


@dataclass
class IngestJob:
    source: Path
    collection: str
    started_by: str
    accept_widening: bool = False  # strict mode: the owner accepted the widenings the preview listed
    started: float = field(default_factory=time.time)
    ended: float | None = None
    progress: JobProgress = field(default_factory=JobProgress)
    summary: SyncSummary | None = None
    impact: ImpactReport | None = None  # what the sync did to the golden questions, when it touched theirs
    error: str | None = None
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def running(self) -> bool:
        return not self.finished.is_set()

    @property
    def seconds(self) -> float:
        """Wall time from start to end (so far, while it runs), the impact report included."""
        return (self.ended if self.ended is not None else time.time()) - self.started


class IngestJobs:
    """At most one re-ingest per app process (the components' ingest lock would serialise more anyway)."""

    def __init__(self, components: Components) -> None:
        self.components = components
        self._lock = threading.Lock()
        self.latest: IngestJob | None = None

    def start(self, source: Path, collection: str, started_by: str, *, accept_widening: bool = False) -> IngestJob:
        with self._lock:
            if self.latest is not None and self.latest.running:
                return self.latest
            job = IngestJob(source, collection, started_by, accept_widening)
            self.latest = job
        threading.Thread(target=self._run, args=(job,), name="re-ingest", daemon=True).start()
        return job

    def _run(self, job: IngestJob) -> None:
        settings = self.components.settings
        lower_this_thread(settings.ingest.nice)  # first: the embedder's worker threads inherit it
        watcher = watcher_for(settings, job.collection)
        try:
            job.summary = run_ingest(
                self.components,
                job.source,
                job.collection,
                progress=job.progress,
                started_by=job.started_by,
                accept_widening=job.accept_widening,
                watcher=WatchedPhases(watcher, job.progress) if watcher is not None else None,
            )
            if watcher is not None and watcher.report is not None:
                job.impact = watcher.report
                publish(watcher.report, settings, self.components.tracer)
        except Exception as exc:  # shown on the page: the app must outlive a failed sync
            job.error = f"{type(exc).__name__}: {exc}"
        finally:
            job.ended = time.time()
            job.finished.set()
