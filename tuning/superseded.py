"""Adapters that learned from documents changed or deleted since they were trained ("policy era").

Every example names its source documents with their content hash as indexed when the data was built
(`tuning/provenance.py`), and the adapter's record keeps that list (`sources`: document, hash, examples). After a
sync, each record is compared with the index's sync state: a document whose hash differs was changed, a document
no longer there was deleted. The date is that of the first sync after the adapter was trained that changed or
deleted it (`ingest-runs.jsonl`). A promoted adapter with such documents is "trained on superseded documents":
`assistant tune list`, `assistant ingest` (its summary and `--json`), the corpus page and the quality page say so,
and `assistant tune build-data --changed-only` rebuilds just the examples of those documents.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from assistant.access import Principal
from assistant.adapters import AdapterRecord, read_promoted
from assistant.settings import Settings
from ingestion.history import read_runs
from ingestion.state import SyncState
from tuning import registry

if TYPE_CHECKING:
    from rich.console import Console

    from assistant.components import Components
    from assistant.retriever import Retriever
    from ingestion.state import DocumentState
    from ingestion.summary import SyncSummary


@dataclass(frozen=True)
class StaleSource:
    collection: str
    doc_id: str
    examples: int  # examples of the adapter's data that show it
    how: str  # changed or deleted
    since: str  # the first sync after training that changed or deleted it ("" when the history does not say)
    groups: tuple[str, ...]  # who may read it now (changed), or could when the data was built (deleted)


@dataclass(frozen=True)
class Superseded:
    """One adapter and the documents it learned from that are no longer as it saw them."""

    adapter: str
    promoted: bool
    trained: str
    stale: list[StaleSource] = field(default_factory=list)

    @property
    def examples(self) -> int:
        return sum(s.examples for s in self.stale)

    @property
    def since(self) -> str:
        dates = [s.since for s in self.stale if s.since]
        return min(dates) if dates else ""

    def line(self) -> str:
        """One line for people: which adapter, how many examples, which documents, since when."""
        label = "promoted, trained on superseded documents" if self.promoted else "trained on superseded documents"
        docs = ", ".join(f"{s.doc_id} ({s.how}, {s.examples} ex.)" for s in self.stale[:5])
        more = f" and {len(self.stale) - 5} more" if len(self.stale) > 5 else ""
        since = f" since {self.since}" if self.since else " (changed before the sync history begins)"
        return f"{self.adapter} ({label}{since}): {self.examples} example(s) from {docs}{more}"

    def readable_by(self, principal: Principal) -> Superseded:
        """The same, naming only the documents `principal` may read (a warning on a page shows no other)."""
        return dataclasses.replace(self, stale=[s for s in self.stale if principal.may_read(s.groups)])

    def to_json(self) -> dict[str, Any]:
        return {
            "adapter": self.adapter,
            "promoted": self.promoted,
            "trained": self.trained,
            "since": self.since,
            "examples": self.examples,
            "documents": [dataclasses.asdict(s) for s in self.stale],
        }


def superseded(settings: Settings, records: list[AdapterRecord] | None = None) -> list[Superseded]:
    """The registry's adapters whose training documents changed or were deleted since they were trained (adapters
    whose records name no documents, such as the shipped one, are left out: nothing is known of their sources)."""
    records = registry.list_adapters(settings) if records is None else records
    promoted = read_promoted(settings).current
    state = SyncState(settings.state_path)
    try:
        now = {c: state.documents(c) for c in {s["collection"] for r in records for s in r.sources}}
    finally:
        state.close()
    history = {c: list(reversed(read_runs(settings.data_dir, c))) for c in now}  # oldest sync first
    found = []
    for record in records:
        stale = [_stale(record, s, now[s["collection"]], history[s["collection"]]) for s in record.sources]
        named = [s for s in stale if s is not None]
        if named:
            found.append(Superseded(record.id, record.id == promoted, record.created, named))
    return found


def _stale(
    record: AdapterRecord, source: dict[str, Any], documents: dict[str, DocumentState], runs: list[dict[str, Any]]
) -> StaleSource | None:
    collection, doc_id = str(source["collection"]), str(source["doc_id"])
    current = documents.get(doc_id)
    if current is None:
        how, groups = "deleted", tuple(source.get("groups") or ())
    elif source.get("hash") and current.content_hash != source["hash"]:
        how, groups = "changed", tuple(current.groups)
    else:
        return None  # as trained on (or built before hashes were kept: only a deletion can be told)
    examples = int(source.get("examples", 0))
    return StaleSource(collection, doc_id, examples, how, _since(record, doc_id, runs), groups)


def _since(record: AdapterRecord, doc_id: str, runs: list[dict[str, Any]]) -> str:
    """The first sync (of `runs`, oldest first) after training that changed or deleted the document."""
    for run in runs:
        if str(run.get("finished", "")) < record.created:
            continue
        documents = run.get("documents") or {}
        if doc_id in (documents.get("changed") or []) + (documents.get("deleted") or []):
            return str(run["finished"])
    return ""


class SupersededWatcher:
    """After a sync (`assistant ingest`): the adapters whose training documents it superseded (entry point
    `superseded-adapters` of `assistant.sync_watchers`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.synced = False
        self.found: list[Superseded] = []

    def before_sync(self, retriever: Retriever, documents: dict[str, DocumentState], touched: set[str]) -> None:
        pass

    def after_sync(self, retriever: Retriever, summary: SyncSummary, documents: dict[str, DocumentState]) -> None:
        self.synced = True  # a real sync (not a dry run) changed the index

    def finish(self, components: Components, console: Console) -> None:
        if self.synced:  # read now: the sync's own line of the history (its date) is written once it is over
            self.found = superseded(self.settings)
        for entry in self.found:
            console.print(f"[yellow]adapter {escape(entry.line())}[/yellow]", soft_wrap=True)
        if self.found:
            console.print("rebuild their data with `assistant tune build-data --recipe ... --changed-only`")

    def to_json(self) -> dict[str, Any]:
        return {"superseded_adapters": [entry.to_json() for entry in self.found]} if self.found else {}


def watcher_for(settings: Settings, collection: str | None) -> SupersededWatcher | None:
    """A watcher when the registry holds an adapter that names its training documents."""
    if not any(record.sources for record in registry.list_adapters(settings)):
        return None
    return SupersededWatcher(settings)
