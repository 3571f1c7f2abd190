"""Apply a sync plan to the vector store, crash-safely.

Order of work: withdraw (deleted, uncovered, lost access) -> re-group (payload only) -> read and chunk the added
and changed documents -> embed them window by window, each window one atomic store write followed by one state
commit -> purge tombstones -> flush and optimise. A document's chunks never straddle two writes, so killing the
process at any point leaves each document either at its old version or at its new one; the next run, finding
the state behind the store, redoes the lagging documents and finishes the sync.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath

import numpy as np

from assistant.components import Components
from assistant.errors import AccessRuleError, CollectionMismatchError, DocumentError
from assistant.progress import NO_PROGRESS, Progress
from assistant.store import ChunkRecord, VectorSpace, chunk_point_id
from ingestion.access_policy import narrow
from ingestion.chunker import Chunk, Chunker
from ingestion.crash_points import crash_point
from ingestion.injection import injection_signs
from ingestion.plan import (
    PlannedDocument,
    Regroup,
    SyncPlan,
    content_hash,
    keep_serving_under_policy,
    plan_sync,
    widening,
)
from ingestion.readers import parse_document
from ingestion.recovery import recovered_from_index
from ingestion.sources import Source, SourceFailure
from ingestion.state import DocumentState, SyncState, Widening
from ingestion.summary import SyncSummary

PENDING = "pending"  # content hash of a document whose store write may or may not have happened


@dataclass(frozen=True)
class ReadyDocument:
    """A parsed, chunked document waiting for its embeddings."""

    planned: PlannedDocument
    content_hash: str
    title: str
    groups: tuple[str, ...]
    front_matter_groups: tuple[str, ...] | None
    chunks: list[Chunk]
    flags: tuple[str, ...]  # signs of text aimed at the assistant (indexed all the same; its owner decides)
    widened: Widening | None  # its readers grow with this version


@dataclass
class ReadResult:
    """What reading the added and changed documents gave: the documents to embed, the ones that failed, and
    what must happen to failing documents that are indexed (withdraw or re-group under today's policy)."""

    ready: list[ReadyDocument] = field(default_factory=list)
    failed: list[SourceFailure] = field(default_factory=list)
    kept: SyncPlan = field(default_factory=SyncPlan)


class PhaseTimer:
    """Seconds spent in each phase of a sync (plan, read, embed, write, index)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.phases: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phases[phase] = self.phases.get(phase, 0.0) + time.perf_counter() - started

    @property
    def total(self) -> float:
        return time.perf_counter() - self.started


class Ingestor:
    """Wires source -> parse -> chunk -> embed -> store, keeping the sync state in step."""

    def __init__(self, components: Components, state: SyncState) -> None:
        self.settings = components.settings
        self.store = components.store
        self.embedder = components.embedder
        self.answers = components.in_flight  # answers this process is generating: embedding waits for them
        self.bm25 = components.bm25
        self.state = state
        self.chunker = Chunker(self.settings.chunking, self.embedder.count_tokens)
        self.fingerprint = f"{self.embedder.model_id}|{self.chunker.fingerprint}|{self.bm25.fingerprint}"
        self._guard = _WideningGuard(refuses=False, accepted=False, run_by="cli")

    def sync(
        self,
        source: Source,
        collection: str,
        *,
        dry_run: bool = False,
        strict: bool = False,
        progress: Progress = NO_PROGRESS,
        before_changes: Callable[[set[str]], None] | None = None,
        rebind: bool = False,
        accept_widening: bool = False,
        run_by: str = "cli",
    ) -> SyncSummary:
        """`strict`: an access rule that decides no document, or a document whose readers would grow, fails the sync
        before anything is written; `accept_widening` lets the widening through (recorded with `run_by`).
        `before_changes` runs once the plan is known, before the first write, only when the sync will change the
        index, with the ids of the documents it changes, deletes, withdraws or re-groups (the impact report ranks
        the golden questions expecting those then: a sync that changes nothing costs nothing more).
        `rebind`: the collection's corpus moved to `source`; allowed when it holds at least half of the collection's
        documents (a different corpus would delete the rest)."""
        timer = PhaseTimer()
        with timer("plan"):
            moved = rebind and self.state.source_of(collection) not in (None, source.location)
            if not moved:  # a moved corpus is checked against its documents below instead
                self.state.check_source(collection, source.location)
            indexed, recovered = self._known_documents(collection, dry_run)
            plan = plan_sync(source, indexed, self.fingerprint)
            _refuse_foreign_source(plan, indexed, recovered, collection, source.location)
            if moved:
                _check_same_corpus(plan, indexed, collection, source.location)
                if not dry_run:
                    self.state.rebind(collection, source.location)
        changes = _changes_index(plan)
        self._guard = _WideningGuard(strict and not accept_widening, accept_widening, run_by)
        refusals = _strict_refusals(plan, accept_widening) if strict else []
        if refusals:
            if not dry_run:  # nothing is written: the summary lists the refusals, not the diff
                refused = SyncPlan(
                    failed=refusals,
                    unmatched_rules=plan.unmatched_rules,
                    depth_warnings=plan.depth_warnings,
                    widened=plan.widened,
                    uncovered=plan.uncovered,
                )
                return summarise(refused, ReadResult(), collection, source.location, timer, refused=True)
            plan.failed.extend(refusals)
        if dry_run:
            return summarise(plan, ReadResult(), collection, source.location, timer, dry_run=True)
        self.state.save(collection, plan.rule_moved)  # the state only: the documents and their groups are unchanged
        if not changes and not recovered and self.store.has_collection(collection):
            # Nothing to write: no embedder to load, nothing to flush (a no-op ingest costs its plan only).
            self.state.record_source(collection, source.location)
            in_index = self.store.count(collection)
            return summarise(plan, ReadResult(), collection, source.location, timer, chunks_in_index=in_index)
        if before_changes is not None and changes:
            before_changes(touched_documents(plan))
        self.state.record_source(collection, source.location)
        # Recovered rows are saved before any store write, so a crash or a failed read cannot orphan a document.
        self.state.save(collection, recovered.values())

        with timer("write"):
            self.store.ensure_collection(collection, VectorSpace(self.embedder.model_id, self.embedder.dimension))
            self._withdraw(collection, plan.deleted + plan.withdrawn)
            self._regroup(collection, plan.regrouped)
        with timer("read"):
            read = self._read_all(source, plan.added + plan.changed, progress)
        with timer("write"):
            self._withdraw(collection, read.kept.withdrawn)
            self._regroup(collection, read.kept.regrouped)
        chunks = self._embed_and_write(collection, read.ready, progress, timer)
        with timer("index"):
            self.store.purge_tombstones(collection)
            self.store.finish_writes(collection)
            in_index = self.store.count(collection)
        return summarise(plan, read, collection, source.location, timer, chunks=chunks, chunks_in_index=in_index)

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
            self._record_widenings(collection, [change.widened])
            self.store.set_groups(collection, change.doc_id, change.groups)
            crash_point("after_regroup")
            self.state.save(collection, [replace(change.previous, groups=change.groups, rule=change.rule)])

    def _record_widenings(self, collection: str, found: Sequence[Widening | None]) -> None:
        """Recorded before the write that widens: no document gains readers without a row saying who ran it."""
        widenings = [w for w in found if w is not None]
        if widenings:
            self.state.record_widenings(collection, widenings, self._guard.run_by, self._guard.accepted)

    def _read_all(self, source: Source, docs: list[PlannedDocument], progress: Progress) -> ReadResult:
        """Parse and chunk. Indexed documents that fail keep serving their old version, but only under today's
        policy: the result says which to withdraw or re-group."""
        result = ReadResult()
        progress.start("reading", len(docs))
        for planned in docs:
            try:
                result.ready.append(self._read(source, planned))
            except Exception as exc:  # one document's failure, whatever raised it, is that document's alone
                error = str(exc) if isinstance(exc, DocumentError) else _unexpected(exc)
                result.failed.append(SourceFailure(planned.entry.path, error, doc_id=planned.entry.doc_id))
                if planned.previous is not None:
                    # Only a plain DocumentError leaves its access decidable; anything else withdraws (fail closed).
                    decidable = isinstance(exc, DocumentError) and not isinstance(exc, AccessRuleError)
                    rule = planned.rule if decidable else None
                    keep_serving_under_policy(result.kept, planned.entry.doc_id, rule, planned.previous)
            progress.advance("reading")
        progress.finish("reading")
        return result

    def _read(self, source: Source, planned: PlannedDocument) -> ReadyDocument:
        entry = planned.entry
        raw = source.read(entry)  # read again: the hash stored must be that of the bytes parsed
        parsed = parse_document(entry.kind, PurePosixPath(entry.path).name, raw)
        groups = narrow(planned.rule, parsed.front_matter_groups, entry.doc_id)
        widened = None if planned.previous is None else widening(planned.previous, groups, planned.rule.where)
        if widened is not None and self._guard.refuses:
            # Found only now (its front matter no longer narrows): this document keeps its indexed version.
            raise DocumentError(f"{widened.message}; {_STRICT_WIDENING}")
        return ReadyDocument(
            planned=planned,
            content_hash=content_hash(self.fingerprint, entry.kind, raw),
            title=parsed.title,
            groups=groups,
            front_matter_groups=parsed.front_matter_groups,
            chunks=self.chunker.chunk(parsed),
            flags=tuple(injection_signs("\n".join([parsed.title, *(s.text for s in parsed.sections)]))),
            widened=widened,
        )

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Embed in the embedder's batches, longest texts first as sentence-transformers orders them (less padding);
        before each batch, wait (up to `ingest.yield_to_answers_s`) while this process generates an answer: the app's
        re-ingest then leaves its answers the CPU and the interpreter (ingestion/priority.py lowers the thread's
        priority, which the kernel honours, but not Python's GIL)."""
        wait = self.settings.ingest.yield_to_answers_s
        if wait <= 0:  # the default: one call, as sentence-transformers batches and orders it itself
            return self.embedder.embed_documents(texts)
        step = self.embedder.settings.batch_size
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        vectors = self.embedder.embed_documents([])
        if texts:
            vectors = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        for start in range(0, len(order), step):
            if wait > 0 and self.answers.busy:
                self.answers.wait_idle(timeout=wait)
            batch = order[start : start + step]
            vectors[batch] = self.embedder.embed_documents([texts[i] for i in batch])
        return vectors

    def _embed_and_write(
        self, collection: str, ready: list[ReadyDocument], progress: Progress, timer: PhaseTimer
    ) -> int:
        progress.start("embedding", sum(len(r.chunks) for r in ready))
        written = 0
        for window in _windows(ready, self.settings.ingest.window_chunks):
            with timer("embed"):
                dense = self._embed([c.embed_text for doc in window for c in doc.chunks])
            crash_point("after_embed")
            with timer("write"):
                # Recorded before the store write: if we die after it, the next sync knows these ids may be in
                # the store (a pending row never matches a content hash) and re-embeds or deletes them.
                self.state.save(collection, [_pending_state_of(doc) for doc in window])
                self._record_widenings(collection, [doc.widened for doc in window])
                records: list[ChunkRecord] = []
                for doc in window:
                    records += [self._record(doc, c, dense[len(records) + i]) for i, c in enumerate(doc.chunks)]
                self.store.write_chunks(collection, records, self._stale_ids(collection, window))
                crash_point("after_store_write")
                self.state.save(collection, [_state_of(doc) for doc in window])
                crash_point("after_state_commit")
            written += len(records)
            progress.advance("embedding", len(records))
        progress.finish("embedding")
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


def _unexpected(exc: Exception) -> str:
    """A failure no reader foresaw (a library bug, a RecursionError, a MemoryError): one line, never a crash."""
    detail = str(exc).replace("\n", " ")[:200]
    return (
        f"could not be read ({type(exc).__name__}{': ' + detail if detail else ''}); it is not indexed (an indexed "
        "version is withdrawn), the rest of the sync goes on: check or simplify the file"
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
        flags=doc.flags,
        rule=doc.planned.rule.where,
    )


def _pending_state_of(doc: ReadyDocument) -> DocumentState:
    """The row written before a document's store write: its old version, marked as possibly replaced."""
    previous = doc.planned.previous
    return replace(_state_of(doc), content_hash=PENDING, version=previous.version if previous else 0)


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


def touched_documents(plan: SyncPlan) -> set[str]:
    """The indexed documents a sync changes, deletes, withdraws or re-groups (an added one was in no answer)."""
    changed = {p.entry.doc_id for p in plan.changed} | {r.doc_id for r in plan.regrouped}
    return changed | set(plan.deleted) | set(plan.withdrawn)


def _refuse_foreign_source(
    plan: SyncPlan,
    indexed: dict[str, DocumentState],
    recovered: dict[str, DocumentState],
    collection: str,
    location: str,
) -> None:
    """A collection whose state was lost, synced from a source sharing none of its documents: this is the wrong
    folder, and going on would delete the whole collection."""
    if recovered and len(recovered) == len(indexed) and len(plan.deleted) + len(plan.held) == len(recovered):
        raise CollectionMismatchError(
            f"collection {collection!r} has lost its sync state and holds {len(recovered)} documents, none of "
            f"them in {location}: it was built from another source. Sync that source, or pass "
            "--collection NAME for this one"
        )


def _check_same_corpus(plan: SyncPlan, indexed: dict[str, DocumentState], collection: str, location: str) -> None:
    """A moved corpus keeps most of its documents; one that shares few with the collection is another corpus."""
    shared = len(indexed) - len(plan.deleted) - len(plan.held)
    if shared * 2 < len(indexed):
        raise CollectionMismatchError(
            f"{location} holds only {shared} of the {len(indexed)} documents of collection {collection!r}: it is not "
            "the same corpus moved, so it is not re-bound (that would delete the rest); use --collection NAME"
        )


def _changes_index(plan: SyncPlan) -> bool:
    return bool(plan.added or plan.changed or plan.deleted or plan.withdrawn or plan.regrouped)


_STRICT_WIDENING = (
    "strict mode refuses to give documents more readers unless told to: check the rules named, then sync with "
    "--accept-widening (recorded with who ran it)"
)


@dataclass(frozen=True)
class _WideningGuard:
    refuses: bool  # strict, and not told to accept: a widening found while reading fails that document
    accepted: bool
    run_by: str


def _strict_refusals(plan: SyncPlan, accept_widening: bool) -> list[SourceFailure]:
    """Why strict mode syncs nothing: each rule that decides no document, each widening not accepted."""
    refusals = [
        SourceFailure(
            f"{rule.origin}:{rule.line}",
            f"{rule.problem}; strict mode syncs nothing while a rule decides no document: fix the rule's "
            "pattern, move it, or remove it",
        )
        for rule in plan.unmatched_rules
    ]
    if not accept_widening:
        refusals += [SourceFailure(w.doc_id, f"{w.message}; {_STRICT_WIDENING}") for w in plan.widened]
    return refusals


def _widened(plan: SyncPlan, read: ReadResult) -> list[Widening]:
    """What a sync widened: its regroups and the documents it read (a dry run shows the plan's estimate)."""
    regrouped = [change.widened for change in plan.regrouped + read.kept.regrouped]
    found = [w for w in regrouped + [doc.widened for doc in read.ready] if w is not None]
    return sorted(found, key=lambda w: w.doc_id)


def summarise(
    plan: SyncPlan,
    read: ReadResult,
    collection: str,
    location: str,
    timer: PhaseTimer,
    *,
    dry_run: bool = False,
    refused: bool = False,
    chunks: int = 0,
    chunks_in_index: int = 0,
) -> SyncSummary:
    """What the sync did: the plan, less the documents that failed to read (an indexed one keeps serving its old
    version), plus what their failure withdrew or re-grouped."""
    failed = {f.doc_id for f in read.failed}
    return SyncSummary(
        collection=collection,
        source=location,
        dry_run=dry_run,
        added=[d.entry.doc_id for d in plan.added if d.entry.doc_id not in failed],
        changed=[d.entry.doc_id for d in plan.changed if d.entry.doc_id not in failed],
        deleted=plan.deleted + plan.withdrawn + read.kept.withdrawn,
        regrouped=[change.doc_id for change in plan.regrouped + read.kept.regrouped],
        unchanged=plan.unchanged,
        uncovered=plan.uncovered,
        failed=list(plan.failed) + read.failed,
        ignored=plan.ignored,
        held=plan.held,
        unmatched_rules=[rule.message for rule in plan.unmatched_rules],
        rule_warnings=[warning.message for warning in plan.depth_warnings],
        widened=[w.message for w in (plan.widened if dry_run or refused else _widened(plan, read))],
        flagged=[f"{doc.planned.entry.doc_id}: {flag}" for doc in read.ready for flag in doc.flags],
        chunks=chunks,
        chunks_in_index=chunks_in_index,
        seconds=timer.total,
        phases=dict(timer.phases),
        refused=refused,
    )
