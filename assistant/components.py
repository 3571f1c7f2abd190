"""The one place that wires the runtime: settings -> store, embedder, BM25, retriever, recall gate, generator,
tracer. Every entry point (CLI commands, ingestion, evals, benchmarks, tuning, the app, tests) gets them here.

`open_components(settings)` opens them once per process and closes them in order on exit, even after an error:
buffered traces are sent, then the store is closed (which releases the embedded index's lock). Everything heavy is
opened on first use, so a command that only records feedback never opens the index or loads a model. A re-ingest
and answering may run at the same time on one `Components` (one thread each): the store serialises its own calls,
and `ingest_lock` keeps two re-ingests from overlapping (in this process, and beside another one). Who is served
the adapter is checked against the index at its first use and again after each sync (`recheck_adapter`).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING

from assistant.adapters import AdapterRecord, narrowed, resolve_adapter, served_record
from assistant.embedder import Embedder
from assistant.errors import ConfigError
from assistant.evidence import EVIDENCE_RECORD, SHIPPED_EVIDENCE, EvidenceScorer, SentenceScorer
from assistant.locks import SyncLock
from assistant.recall_gate import RecallGate
from assistant.retriever import Retriever
from assistant.settings import COLLECTION_NAME, Settings
from assistant.similarity_evidence import RECORD as SIMILARITY_RECORD
from assistant.similarity_evidence import SHIPPED_SIMILARITY, SimilarityScorer, read_similarity_record
from assistant.sparse import Bm25Encoder
from assistant.store import VectorStore, build_store
from assistant.tracing import Tracer

if TYPE_CHECKING:
    from assistant.answer_model import AnswerModel
    from assistant.answering import Answerer

log = logging.getLogger(__name__)


class Components:
    """The runtime of one process. Build it with `open_components`; pass `embedder`, `generator` or `tracer` to
    share ones already loaded (tests, benchmarks comparing variants)."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        generator: AnswerModel | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.settings = settings
        self.ingest_lock = SyncLock(settings.data_dir / "sync.lock")
        self._opening = threading.Lock()  # two threads' first use must not open the store twice
        self._embedder = embedder
        self._generator = generator
        self.tracer = tracer if tracer is not None else Tracer(settings.tracing)
        self._store: VectorStore | None = None
        self._retrievers: dict[str, Retriever] = {}
        self._adapter_lock = threading.Lock()  # the warm-up thread and a question may both ask first
        self._adapter_checked = False
        self._served_adapter: AdapterRecord | None = None

    @property
    def store(self) -> VectorStore:
        with self._opening:
            if self._store is None:
                self._store = build_store(self.settings)
            return self._store

    @cached_property
    def embedder(self) -> Embedder:
        return self._embedder if self._embedder is not None else Embedder(self.settings.embedder)

    @cached_property
    def bm25(self) -> Bm25Encoder:
        return Bm25Encoder(self.settings.bm25)

    @cached_property
    def recall_gate(self) -> RecallGate:
        return RecallGate(self.settings.recall_gate, self.bm25)

    @cached_property
    def _adapter_on_disk(self) -> AdapterRecord | None:
        """The adapter chosen (checked against the prompt template, base model and data hashes), once a process."""
        if self._generator is not None:  # a generator passed in carries its own adapter, if any
            return None
        return resolve_adapter(self.settings)

    @property
    def adapter(self) -> AdapterRecord | None:
        """The adapter served, with the data groups its sources have in the index now; None: the base model.
        Checked at first use and after each sync; a source gone from the index raises (the adapter is refused)."""
        with self._adapter_lock:
            if not self._adapter_checked:
                on_disk, served = self._adapter_on_disk, None
                if on_disk is not None:
                    served = served_record(on_disk, self.store)
                    line = narrowed(on_disk, served)
                    if line is not None and served != self._served_adapter:  # once per change, not per question
                        log.warning(line)
                self._served_adapter, self._adapter_checked = served, True
            return self._served_adapter

    def recheck_adapter(self) -> None:
        """Call after a sync: a regrouped or deleted source may narrow who is served the adapter, or stop it."""
        with self._adapter_lock:
            self._adapter_checked = False

    @cached_property
    def generator(self) -> AnswerModel:
        """The answering model with the served adapter: in this process (merged in; weights load on its first
        answer), or in the serving engine (the adapter asked for by its id)."""
        if self._generator is not None:
            return self._generator
        if self.settings.generator.backend == "engine":
            from assistant.engine import EngineGenerator

            return EngineGenerator(self.settings.generator, self.settings.engine, self.adapter)
        from assistant.generator import Generator

        settings = self.settings.generator
        if self.adapter is not None:
            settings = settings.model_copy(update={"adapter": self.adapter.path})
        return Generator(settings, self.settings.models_dir)

    @cached_property
    def evidence(self) -> SentenceScorer | None:
        """The evidence scorer: the configured folder (a cross-encoder's `evidence.json` or a fitted
        `similarity-evidence.json`), else the one shipped in the package (cross-encoder first); None when off or
        absent."""
        settings = self.settings.evidence
        if not settings.enabled:
            return None
        folders = [settings.scorer] if settings.scorer is not None else [SHIPPED_EVIDENCE, SHIPPED_SIMILARITY]
        for folder in folders:
            if (folder / EVIDENCE_RECORD).is_file():
                return EvidenceScorer.load(folder)
            if (folder / SIMILARITY_RECORD).is_file():
                return SimilarityScorer(read_similarity_record(folder), self.embedder, self.bm25, settings)
        if settings.scorer is not None:
            raise ConfigError(
                f"evidence.scorer {settings.scorer} holds neither {EVIDENCE_RECORD} nor {SIMILARITY_RECORD}"
            )
        return None

    def collection(self, name: str | None = None) -> str:
        """`name` (a --collection option) or the configured default; a name is a folder in the data directory."""
        if name is not None and not re.fullmatch(COLLECTION_NAME, name):
            raise ConfigError(f"collection name {name!r}: use letters, digits, '-' and '_' (at most 64)")
        return name or self.settings.store.collection

    def retriever(self, collection: str | None = None) -> Retriever:
        name = self.collection(collection)
        if name not in self._retrievers:
            self._retrievers[name] = Retriever(
                self.store, name, self.embedder, self.bm25, self.settings.retrieval.model_copy()
            )
        return self._retrievers[name]

    def answerer(self, collection: str | None = None, *, log_questions: bool = True) -> Answerer:
        """`log_questions=False` for evaluations: their questions are not people's, and stay out of review."""
        from assistant.answering import Answerer
        from assistant.question_log import QuestionLog

        logged = log_questions and self.settings.review.log_questions
        return Answerer(
            self.retriever(collection),
            self.recall_gate,
            self.generator,
            adapter=self.adapter,
            evidence=self.evidence,
            evidence_settings=self.settings.evidence,
            chat_template=self.settings.generator.chat_template,
            tracer=self.tracer,
            question_log=QuestionLog(self.settings.data_dir) if logged else None,
        )

    def close(self) -> None:
        """Send buffered traces, then close the store (releasing the index lock) if it was opened."""
        try:
            self.tracer.flush()
        finally:
            with self._opening:
                store, self._store = self._store, None
            if store is not None:
                store.close()


@contextmanager
def open_components(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    generator: AnswerModel | None = None,
    tracer: Tracer | None = None,
) -> Iterator[Components]:
    components = Components(settings, embedder=embedder, generator=generator, tracer=tracer)
    try:
        yield components
    finally:
        components.close()
