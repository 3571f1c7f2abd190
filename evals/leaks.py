"""The access-leak probe: every dev user asks every golden question and, by exact title, for every document of
the index; any returned chunk outside the user's groups (by its payload or by the stored document's groups) is a
leak. `assistant eval leaks` saves the run; the app's quality page shows the latest one. The property-based
suite in tests/test_access_leaks.py goes wider (random groups, random text); this is the probe an operator runs
against a live index."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from assistant.access import Principal
from assistant.progress import NO_PROGRESS, Progress
from assistant.retriever import Retriever
from assistant.settings import RetrievalMode
from evals.run_files import save_run

LEAKS_SUFFIX = "-access-leaks.json"


@dataclass(frozen=True)
class Leak:
    user: str
    question: str
    doc_id: str
    doc_groups: list[str]


@dataclass
class LeakRun:
    collection: str
    users: int
    probes: int
    leaks: list[Leak]
    seconds: float
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))

    def save(self, folder: Path) -> Path:
        return save_run(folder, self.created, LEAKS_SUFFIX, asdict(self))


def probe_leaks(
    retriever: Retriever, users: dict[str, Principal], questions: list[str], progress: Progress = NO_PROGRESS
) -> LeakRun:
    started = time.perf_counter()
    stored = {c.doc_id: (set(c.groups), c.title) for c in retriever.store.iter_chunks(retriever.collection)}
    probes = list(dict.fromkeys([*questions, *(title for _, title in stored.values() if title)]))
    leaks: list[Leak] = []
    count = 0
    progress.start("probes", len(users) * len(probes))
    for name, principal in sorted(users.items()):
        for question in probes:
            progress.advance("probes")
            for mode in (RetrievalMode.hybrid, RetrievalMode.bm25):  # the lexical side matches titles exactly
                count += 1
                for chunk in retriever.search(principal, question, mode=mode).chunks:
                    doc_groups = stored.get(chunk.doc_id, (set(), ""))[0]
                    if not (set(chunk.groups) & principal.groups and doc_groups & principal.groups):
                        leaks.append(Leak(name, question, chunk.doc_id, sorted(doc_groups | set(chunk.groups))))
    progress.finish("probes")
    return LeakRun(retriever.collection, len(users), count, leaks, time.perf_counter() - started)
