"""Apply a sync plan to the vector store, crash-safely.

Order of work: withdraw (deleted, uncovered, lost access) -> re-group (payload only) -> read and chunk the added
and changed documents -> embed them window by window, each window one atomic store write followed by one state
commit -> purge tombstones -> flush and optimise. A document's chunks never straddle two writes, so killing the
process at any point leaves each document either at its old version or at its new one; the next run, finding
the state behind the store, redoes the lagging documents and finishes the sync.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from assistant.embedder import Embedder
from assistant.errors import AccessRuleError, CollectionMismatchError, DocumentError
from assistant.settings import Settings
from assistant.sparse import Bm25Encoder
from assistant.store import ChunkRecord, VectorSpace, VectorStore, chunk_point_id
from ingestion.access_policy import narrow
from ingestion.chunker import Chunk, Chunker
from ingestion.plan import PlannedDocument, Regroup, SyncPlan, content_hash, keep_serving_under_policy, plan_sync
from ingestion.readers import parse_document
from ingestion.sources import Source, SourceFailure
from ingestion.state import DocumentState, SyncState
from ingestion.summary import SyncSummary

_crash_counts: dict[str, int] = {}
PENDING = "pending"  # content hash of a document whose store write may or may not have happened


def crash_point(name: str) -> None:
    """Fault injection for the crash-safety tests: `ASSISTANT_CRASH_AT=name:n` SIGKILLs this process the n-th
    time it reaches `name`. Unset (always, outside those tests) it does nothing."""
    wanted = os.environ.get("ASSISTANT_CRASH_AT")
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point == name:
        _crash_counts[name] = _crash_counts.get(name, 0) + 1
        if _crash_counts[name] >= int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class ReadyDocument:
    """A parsed, chunked document waiting for its embeddings."""

    planned: PlannedDocument
    content_hash: str
    title: str
    groups: tuple[str, ...]
    front_matter_groups: tuple[str, ...] | None
    chunks: list[Chunk]


class Ingestor:
    """Wires source -> parse -> chunk -> embed -> store, keeping the sync state in step."""

    def __init__(self, settings: Settings, store: VectorStore, embedder: Embedder, state: SyncState) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.state = state
        self.bm25 = Bm25Encoder(settings.bm25)
        self.chunker = Chunker(settings.chunking, embedder.count_tokens)
        self.fingerprint = f"{embedder.model_id}|{self.chunker.fingerprint}|{self.bm25.fingerprint}"

    def sync(self, source: Source, collection: str, *, dry_run: bool = False, progress: bool = False) -> SyncSummary:
        started = time.perf_counter()
        self.state.bind_source(collection, source.location, record=False)  # raises on another source
        indexed, recovered = self._known_documents(collection, dry_run)
        plan = plan_sync(source, indexed, self.fingerprint)
        if recovered and len(recovered) == len(indexed) and len(plan.deleted) + len(plan.held) == len(recovered):
            raise CollectionMismatchError(
                f"collection {collection!r} has lost its sync state and holds {len(recovered)} documents, none of "
                f"them in {source.location}: it was built from another source. Sync that source, or pass "
                "--collection NAME for this one"
            )
        summary = _summary_of(plan, collection, source.location, dry_run)
        summary.phases["plan"] = time.perf_counter() - started
        if dry_run:
            summary.seconds = time.perf_counter() - started
            return summary
        self.state.bind_source(collection, source.location, record=True)
        # Recovered rows are saved before any store write, so a crash or a failed read cannot orphan a document.
        self.state.save(collection, recovered.values())

        with _timed(summary, "write"):
            self.store.ensure_collection(collection, VectorSpace(self.embedder.model_id, self.embedder.dimension))
            self._withdraw(collection, plan.deleted + plan.withdrawn)
            self._regroup(collection, plan.regrouped)
        with _progress(progress) as bar:
            with _timed(summary, "read"):
                ready, kept = self._read_all(source, plan.added + plan.changed, summary, bar)
            with _timed(summary, "write"):
                self._withdraw(collection, kept.withdrawn)
                self._regroup(collection, kept.regrouped)
            summary.deleted += kept.withdrawn
            summary.regrouped += [change.doc_id for change in kept.regrouped]
            summary.chunks = self._embed_and_write(collection, ready, bar, summary)
        with _timed(summary, "index"):
            self.store.purge_tombstones(collection)
            self.store.finish_writes(collection)
            summary.chunks_in_index = self.store.count(collection)
        summary.seconds = time.perf_counter() - started
        return summary

    # -- steps ----------------------------------------------------------------------------------
    def _known_documents(
        self, collection: str, dry_run: bool
    ) -> tuple[dict[str, DocumentState], dict[str, DocumentState]]:
        """(every indexed document's state, the part of it recovered from the index) with state and index in step."""
        indexed = self.state.documents(collection)
        if not self.store.has_collection(collection):
            if indexed and not dry_run:
                self.state.reset(collection)  # the index was removed behind our back: rebuild it from the source
            return {}, {}
        unknown = self.store.doc_ids(collection) - set(indexed)  # the state was lost, or restored from an old copy
        recovered = recovered_from_index(self.store, collection, unknown) if unknown else {}
        return {**recovered, **indexed}, recovered

    def _withdraw(self, collection: str, doc_ids: list[str]) -> None:
        if doc_ids:
            self.store.delete_documents(collection, doc_ids)
            crash_point("after_delete")
            self.state.forget(collection, doc_ids)

    def _regroup(self, collection: str, regroups: list[Regroup]) -> None:
        for change in regroups:
            self.store.set_groups(collection, change.doc_id, change.groups)
            crash_point("after_regroup")
            self.state.save(collection, [_replace_groups(change.previous, change.groups)])

    def _read_all(
        self, source: Source, docs: list[PlannedDocument], summary: SyncSummary, bar: Progress
    ) -> tuple[list[ReadyDocument], SyncPlan]:
        """Parse and chunk. Indexed documents that fail keep serving their old version, but only under today's
        policy: the returned plan withdraws or re-groups them."""
        task = bar.add_task("reading", total=len(docs))
        ready: list[ReadyDocument] = []
        kept = SyncPlan()
        for planned in docs:
            try:
                ready.append(self._read(source, planned))
            except DocumentError as exc:
                summary.failed.append(SourceFailure(planned.entry.path, str(exc), doc_id=planned.entry.doc_id))
                _drop(summary, planned.entry.doc_id)
                if planned.previous is not None:
                    rule = None if isinstance(exc, AccessRuleError) else planned.rule  # undecidable: withdraw
                    keep_serving_under_policy(kept, planned.entry.doc_id, rule, planned.previous)
            bar.advance(task)
        return ready, kept

    def _read(self, source: Source, planned: PlannedDocument) -> ReadyDocument:
        entry = planned.entry
        raw = source.read(entry)  # read again: the hash stored must be that of the bytes parsed
        parsed = parse_document(entry.kind, PurePosixPath(entry.path).name, raw)
        groups = narrow(planned.rule, parsed.front_matter_groups, entry.doc_id)
        return ReadyDocument(
            planned=planned,
            content_hash=content_hash(self.fingerprint, raw),
            title=parsed.title,
            groups=groups,
            front_matter_groups=parsed.front_matter_groups,
            chunks=self.chunker.chunk(parsed),
        )

    def _embed_and_write(self, collection: str, ready: list[ReadyDocument], bar: Progress, summary: SyncSummary) -> int:
        task = bar.add_task("embedding", total=sum(len(r.chunks) for r in ready))
        written = 0
        for window in _windows(ready, self.settings.ingest.window_chunks):
            with _timed(summary, "embed"):
                dense = self.embedder.embed_documents([c.embed_text for doc in window for c in doc.chunks])
            crash_point("after_embed")
            with _timed(summary, "write"):
                # Recorded before the store write: if we die after it, the next sync knows these ids may be in
                # the store (a pending row never matches a content hash) and re-embeds or deletes them.
                self.state.save(collection, [_pending_state_of(doc) for doc in window])
                records: list[ChunkRecord] = []
                for doc in window:
                    records += [self._record(doc, c, dense[len(records) + i]) for i, c in enumerate(doc.chunks)]
                self.store.write_chunks(collection, records, self._stale_ids(collection, window))
                crash_point("after_store_write")
                self.state.save(collection, [_state_of(doc) for doc in window])
                crash_point("after_state_commit")
            written += len(records)
            bar.advance(task, len(records))
        return written

    def _stale_ids(self, collection: str, window: Sequence[ReadyDocument]) -> dict[str, str]:
        """Ids a document has in the store that its new version does not use: they become tombstones."""
        present = self.store.chunk_ids(collection, [doc.planned.entry.doc_id for doc in window])
        stale: dict[str, str] = {}
        for doc in window:
            doc_id = doc.planned.entry.doc_id
            keep = {chunk_point_id(doc_id, c.index) for c in doc.chunks}
            stale.update({pid: doc_id for pid in present[doc_id] - keep})
        return stale

    def _record(self, doc: ReadyDocument, chunk: Chunk, dense: Sequence[float]) -> ChunkRecord:
        return ChunkRecord(
            doc_id=doc.planned.entry.doc_id,
            chunk_index=chunk.index,
            text=chunk.text,
            title=doc.title,
            path=doc.planned.entry.path,
            section=chunk.section,
            groups=doc.groups,
            doc_hash=doc.content_hash,
            chunk_hash=chunk.hash,
            version=_next_version(doc.planned),
            dense=dense,
            sparse=self.bm25.embed_document(chunk.embed_text),
        )


def _next_version(planned: PlannedDocument) -> int:
    return 1 if planned.previous is None else planned.previous.version + 1


def _state_of(doc: ReadyDocument) -> DocumentState:
    entry = doc.planned.entry
    return DocumentState(
        doc_id=entry.doc_id,
        path=entry.path,
        content_hash=doc.content_hash,
        groups=doc.groups,
        front_matter_groups=doc.front_matter_groups,
        version=_next_version(doc.planned),
        chunks=len(doc.chunks),
        title=doc.title,
    )


def _pending_state_of(doc: ReadyDocument) -> DocumentState:
    previous = doc.planned.previous
    return DocumentState(
        doc_id=doc.planned.entry.doc_id,
        path=doc.planned.entry.path,
        content_hash=PENDING,
        groups=doc.groups,
        front_matter_groups=doc.front_matter_groups,
        version=previous.version if previous else 0,
        chunks=len(doc.chunks),
        title=doc.title,
    )


def _replace_groups(previous: DocumentState, groups: tuple[str, ...]) -> DocumentState:
    return DocumentState(
        previous.doc_id,
        previous.path,
        previous.content_hash,
        groups,
        previous.front_matter_groups,
        previous.version,
        previous.chunks,
        previous.title,
    )


def _windows(docs: list[ReadyDocument], size: int) -> Iterator[list[ReadyDocument]]:
    """Whole documents, about `size` chunks per window."""
    window: list[ReadyDocument] = []
    count = 0
    for doc in docs:
        window.append(doc)
        count += len(doc.chunks)
        if count >= size:
            yield window
            window, count = [], 0
    if window:
        yield window


def _summary_of(plan: SyncPlan, collection: str, source: str, dry_run: bool) -> SyncSummary:
    return SyncSummary(
        collection=collection,
        source=source,
        dry_run=dry_run,
        added=[d.entry.doc_id for d in plan.added],
        changed=[d.entry.doc_id for d in plan.changed],
        deleted=plan.deleted + plan.withdrawn,
        regrouped=[change.doc_id for change in plan.regrouped],
        unchanged=plan.unchanged,
        uncovered=plan.uncovered,
        failed=list(plan.failed),
        ignored=plan.ignored,
        held=plan.held,
    )


def _drop(summary: SyncSummary, doc_id: str) -> None:
    """A document that failed is neither added nor changed; after a parse error its old version keeps serving."""
    for bucket in (summary.added, summary.changed):
        if doc_id in bucket:
            bucket.remove(doc_id)


@contextmanager
def _timed(summary: SyncSummary, phase: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        summary.phases[phase] = summary.phases.get(phase, 0.0) + time.perf_counter() - started


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress]:
    columns = (
        TextColumn("{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not enabled, transient=False) as bar:
        yield bar


RECOVERED = "recovered-from-index"  # a content hash no document has: every recovered document is read again


def recovered_from_index(store: VectorStore, collection: str, doc_ids: set[str]) -> dict[str, DocumentState]:
    """State rows rebuilt from the index's own payloads for indexed documents the sync state does not know (it was
    lost, or restored from an older copy).

    Documents the source no longer has are then deleted instead of lingering. Every recovered document is read and
    embedded again (its hash never matches), and its front matter groups are taken to be the groups it is served
    with, so a recovered document can be narrowed or withdrawn by today's policy but never widened.
    """
    found: dict[str, DocumentState] = {}
    for chunk in store.iter_chunks(collection):
        if chunk.doc_id not in doc_ids:
            continue
        known = found.get(chunk.doc_id)
        # Chunks of one document share its groups; should they not, only groups all of them have are kept.
        groups = chunk.groups if known is None else tuple(g for g in known.groups if g in chunk.groups)
        payload = chunk.payload
        found[chunk.doc_id] = DocumentState(
            doc_id=chunk.doc_id,
            path=str(payload.get("path", chunk.doc_id)),
            content_hash=RECOVERED,
            groups=groups,
            front_matter_groups=groups,
            version=int(payload.get("version", 0)),
            chunks=(known.chunks if known else 0) + 1,
            title=str(payload.get("title", "")),
        )
    return found
