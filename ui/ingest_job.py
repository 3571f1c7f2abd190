"""A re-ingest started from the app runs in a background thread of the app process, not in the page's script:
leaving the page does not cut it short, chat sessions keep answering meanwhile (from the old version of each
document until its new version is written), and every corpus owner sees the one running job and its progress."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from assistant.components import Components
from evals.impact import ImpactReport, publish, watcher_for
from ingestion.run import run_ingest
from ingestion.summary import SyncSummary


class JobProgress:
    """The `Progress` protocol, readable from another thread: task -> (done, total)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.tasks: dict[str, tuple[int, int]] = {}

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

    def snapshot(self) -> dict[str, tuple[int, int]]:
        with self._lock:
            return dict(self.tasks)


@dataclass
class IngestJob:
    source: Path
    collection: str
    started_by: str
    started: float = field(default_factory=time.time)
    progress: JobProgress = field(default_factory=JobProgress)
    summary: SyncSummary | None = None
    impact: ImpactReport | None = None  # what the sync did to the golden questions, when it touched theirs
    error: str | None = None
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def running(self) -> bool:
        return not self.finished.is_set()


class IngestJobs:
    """At most one re-ingest per app process (the components' ingest lock would serialise more anyway)."""

    def __init__(self, components: Components) -> None:
        self.components = components
        self._lock = threading.Lock()
        self.latest: IngestJob | None = None

    def start(self, source: Path, collection: str, started_by: str) -> IngestJob:
        with self._lock:
            if self.latest is not None and self.latest.running:
                return self.latest
            job = IngestJob(source, collection, started_by)
            self.latest = job
        threading.Thread(target=self._run, args=(job,), name="re-ingest", daemon=True).start()
        return job

    def _run(self, job: IngestJob) -> None:
        settings = self.components.settings
        watcher = watcher_for(settings, job.collection)
        try:
            job.summary = run_ingest(
                self.components,
                job.source,
                job.collection,
                progress=job.progress,
                started_by=job.started_by,
                watcher=watcher,
            )
            if watcher is not None and watcher.report is not None:
                job.impact = watcher.report
                publish(watcher.report, settings, self.components.tracer)
        except Exception as exc:  # shown on the page: the app must outlive a failed sync
            job.error = f"{type(exc).__name__}: {exc}"
        finally:
            job.finished.set()
