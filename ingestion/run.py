"""Run one sync from a path on the process's components: open the source and the sync state, sync, close the
state. The store and the embedder belong to the components and stay open (the app keeps answering meanwhile)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console

from assistant.components import Components
from assistant.errors import AccessPolicyError
from assistant.progress import NO_PROGRESS, Progress
from assistant.retriever import Retriever
from assistant.settings import Settings
from ingestion.access_policy import AccessPolicy
from ingestion.history import record_run
from ingestion.sources import SourceFailure, open_source
from ingestion.state import DocumentState, SyncState
from ingestion.summary import SyncSummary
from ingestion.sync import Ingestor


class SyncWatcher(Protocol):
    """Called around a sync, with the collection's documents before and after (the impact report)."""

    def before_sync(self, retriever: Retriever, documents: dict[str, DocumentState], touched: set[str]) -> None: ...

    def after_sync(self, retriever: Retriever, summary: SyncSummary, documents: dict[str, DocumentState]) -> None: ...


# Watchers are contributed by the packages above ingestion (the impact report is evals'), as commands are: an entry
# point of this group names a factory `(settings, collection) -> watcher | None`, so ingestion never imports them.
WATCHER_GROUP = "assistant.sync_watchers"


class CliSyncWatcher(SyncWatcher, Protocol):
    def finish(self, components: Components, console: Console) -> None:
        """After the sync summary (`assistant ingest`): show and keep what the watcher found."""

    def to_json(self) -> dict[str, Any]:
        """What it found, as keys added to `assistant ingest --json`'s summary ({} when nothing)."""


@dataclass
class SyncWatchers:
    """The installed watchers that want this sync, called in the order of their entry-point names."""

    members: Sequence[CliSyncWatcher] = field(default_factory=list)

    @classmethod
    def installed(cls, settings: Settings, collection: str | None) -> SyncWatchers:
        found = (entry.load()(settings, collection) for entry in sorted(entry_points(group=WATCHER_GROUP), key=_name))
        return cls([watcher for watcher in found if watcher is not None])

    def before_sync(self, retriever: Retriever, documents: dict[str, DocumentState], touched: set[str]) -> None:
        for watcher in self.members:
            watcher.before_sync(retriever, documents, touched)

    def after_sync(self, retriever: Retriever, summary: SyncSummary, documents: dict[str, DocumentState]) -> None:
        for watcher in self.members:
            watcher.after_sync(retriever, summary, documents)

    def finish(self, components: Components, console: Console) -> None:
        for watcher in self.members:
            watcher.finish(components, console)

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for watcher in self.members:
            found |= watcher.to_json()
        return found


def _name(entry: EntryPoint) -> str:
    return entry.name


def run_ingest(
    components: Components,
    source_path: Path,
    collection: str | None = None,
    groups: list[str] | None = None,
    *,
    dry_run: bool = False,
    progress: Progress = NO_PROGRESS,
    started_by: str = "cli",
    watcher: SyncWatcher | None = None,
    rebind: bool = False,
    accept_widening: bool = False,
) -> SyncSummary:
    """Sync `source_path` into `collection` (default: store.collection); `groups` gives every document these
    groups instead of an access.yaml. One re-ingest at a time per process. A real sync is appended to the
    history (`ingestion.history`) with `started_by`, who is also recorded with every widening it applies
    (`accept_widening`: strict mode lets documents gain readers).

    A `watcher` (the impact report) is called with the collection's documents before and after a real sync that
    changes the index; a sync that changes nothing never calls it.

    An invalid access policy syncs nothing: dropping one bad rule could let an earlier, broader rule apply.
    """
    settings = components.settings
    target = components.collection(collection)
    policy = AccessPolicy.grant_all(groups) if groups else None
    try:
        source = open_source(source_path, policy, settings.ingest.extensions, settings.ingest.max_file_bytes)
    except AccessPolicyError as exc:
        where = f"line {exc.line}: " if exc.line is not None else ""
        error = f"{where}{exc.reason}; nothing was synced, the index keeps serving its previous state"
        failure = SourceFailure(Path(exc.path).name, error)
        summary = SyncSummary(target, str(source_path.resolve()), dry_run, failed=[failure], refused=True)
    else:
        with components.ingest_lock:
            state = SyncState(settings.state_path)
            watched: list[bool] = []  # the watcher saw the index before a sync that changes it

            def before_changes(touched: set[str]) -> None:
                if watcher is not None:
                    watcher.before_sync(components.retriever(target), state.documents(target), touched)
                    watched.append(True)

            try:
                summary = Ingestor(components, state).sync(
                    source,
                    target,
                    dry_run=dry_run,
                    strict=settings.ingest.strict,
                    progress=progress,
                    before_changes=before_changes,
                    rebind=rebind,
                    accept_widening=accept_widening,
                    run_by=started_by,
                )
                if watcher is not None and watched:
                    watcher.after_sync(components.retriever(target), summary, state.documents(target))
            finally:
                state.close()
                components.recheck_adapter()  # a regrouped or deleted source may narrow who is served the adapter
    if not dry_run:
        record_run(settings.data_dir, summary, started_by)
    return summary
