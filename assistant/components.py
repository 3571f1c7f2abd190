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
import random
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING

from assistant.access import Principal
from assistant.adapters import (
    PROMOTED,
    AdapterRecord,
    adapters_dir,
    check_servable,
    narrowed,
    read_record,
    resolve_adapter,
    served_record,
)
from assistant.embedder import Embedder
from assistant.errors import ConfigError
from assistant.evidence import EVIDENCE_RECORD, SHIPPED_EVIDENCE, EvidenceScorer, SentenceScorer
from assistant.json_file import FileWatch
from assistant.locks import SyncLock
from assistant.recall_gate import RecallGate
from assistant.retriever import Retriever
from assistant.rollout import Rollout, RolloutFile, in_canary
from assistant.settings import COLLECTION_NAME, Settings
from assistant.shadow import InFlight, ShadowRunner
from assistant.similarity_evidence import RECORD as SIMILARITY_RECORD
from assistant.similarity_evidence import SHIPPED_SIMILARITY, SimilarityScorer, read_similarity_record
from assistant.sparse import Bm25Encoder
from assistant.store import VectorStore, build_store
from assistant.tracing import Tracer

if TYPE_CHECKING:
    from assistant.answer_model import AnswerModel
    from assistant.answering import Answerer, Delivered
    from assistant.question_log import QuestionLog

log = logging.getLogger(__name__)
MODELS_KEPT = 3  # the promoted adapter's model, a candidate's, and the one served before (an instant rollback)


class Components:
    """The runtime of one process. Build it with `open_components`; pass `embedder`, `generator` or `tracer` to
    share ones already loaded (tests, benchmarks comparing variants), `candidates` for the models answering as
    candidate adapters in rollout (by adapter id)."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        generator: AnswerModel | None = None,
        tracer: Tracer | None = None,
        candidates: dict[str, AnswerModel] | None = None,
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
        self.in_flight = InFlight()  # answers being generated for users now: shadow work waits for none
        self._rollout_file = RolloutFile(adapters_dir(settings))
        self._candidates: dict[str, AdapterRecord] = {}
        self._models: dict[str, AnswerModel] = dict(candidates or {})  # by adapter id ("": the base model)
        self._models_lock = threading.Lock()
        self._on_disk: AdapterRecord | None = None
        self._promotions = FileWatch(adapters_dir(settings) / PROMOTED)  # a promotion or rollback, from anywhere
        self._syncs = FileWatch(settings.sync_history_path)
        self._shadow_runners: dict[tuple[str, str], ShadowRunner] = {}
        self._random = random.random  # which questions are shadowed (tests pin it)

    @property
    def store(self) -> VectorStore:
        with self._opening:
            if self._store is None:
                self._store = build_store(self.settings)
            return self._store

    @cached_property
    def embedder(self) -> Embedder:
        return (
            self._embedder
            if self._embedder is not None
            else Embedder(self.settings.embedder, self.settings.embedder_exports_dir)
        )

    @cached_property
    def bm25(self) -> Bm25Encoder:
        return Bm25Encoder(self.settings.bm25)

    @cached_property
    def recall_gate(self) -> RecallGate:
        return RecallGate(self.settings.recall_gate, self.bm25)

    def _adapter_on_disk(self) -> AdapterRecord | None:
        """The adapter chosen (checked against the prompt template, base model and data hashes), resolved again
        whenever `promoted.json` changes: a promotion or a rollback made beside a running app applies from its
        next question. Call with `_adapter_lock` held."""
        if self._generator is not None:  # a generator passed in carries its own adapter, if any
            return None
        if self._promotions.changed():
            self._on_disk, self._adapter_checked = resolve_adapter(self.settings), False
        if self._syncs.changed():  # a sync ended, maybe in another process: sources may have moved
            self._adapter_checked = False
            self._candidates.clear()
        return self._on_disk

    @property
    def adapter(self) -> AdapterRecord | None:
        """The adapter served, with the data groups its sources have in the index now; None: the base model.
        Checked at first use, after each sync and after each promotion or rollback; a source gone from the index
        raises (the adapter is refused)."""
        with self._adapter_lock:
            on_disk = self._adapter_on_disk()
            if not self._adapter_checked:
                served = None
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
            self._candidates.clear()

    # -- the candidate in rollout (assistant/rollout.py) ----------------------------------------------
    def rollout(self) -> Rollout | None:
        """The rollout in progress; None where none applies (an adapter fixed by settings)."""
        generator = self.settings.generator
        if generator.adapter is not None or not generator.use_promoted_adapter:
            return None
        return self._rollout_file.current()

    def candidate(self, adapter_id: str) -> AdapterRecord:
        """The candidate's record, checked as the served adapter is (prompt template, base model, training data,
        and its sources' groups in the index now); ConfigError when it may not be served."""
        with self._adapter_lock:
            if adapter_id not in self._candidates:
                record = read_record(adapters_dir(self.settings) / adapter_id)
                check_servable(record, self.settings.generator.model)
                self._candidates[adapter_id] = served_record(record, self.store)
            return self._candidates[adapter_id]

    def model_for(self, record: AdapterRecord | None) -> AnswerModel:
        """The model answering with `record`'s adapter (None: the base model), one per adapter in this process and
        kept: rolling back to an adapter served before needs no new load. In this process each is a copy of the
        base with its adapter merged in (weights load on its first answer); through the engine, the same engine
        asked for the adapter's id. At most `MODELS_KEPT` are kept, the least recently asked for going first (an
        answer in progress keeps its own reference)."""
        key = record.id if record is not None else ""
        with self._models_lock:
            if key in self._models:
                self._models[key] = self._models.pop(key)  # now the most recently asked for
            else:
                while len(self._models) >= MODELS_KEPT:
                    self._models.pop(next(iter(self._models)))
                if self.settings.generator.backend == "engine":
                    from assistant.engine import EngineGenerator

                    model: AnswerModel = EngineGenerator(self.settings.generator, self.settings.engine, record)
                else:
                    from assistant.generator import Generator

                    settings = self.settings.generator
                    if record is not None:
                        settings = settings.model_copy(update={"adapter": record.path})
                    model = Generator(settings, self.settings.models_dir)
                self._models[key] = model
            return self._models[key]

    def _served_to(self, principal: Principal, rollout: Rollout | None) -> tuple[AdapterRecord | None, AnswerModel]:
        """The adapter and model answering `principal`: the canary's for a user in its share who may be served
        it, else the promoted one."""
        if rollout is not None and in_canary(rollout, principal.user_id):
            try:
                record = self.candidate(rollout.adapter)
            except ConfigError as exc:  # the candidate may not be served now: everyone keeps the promoted one
                log.warning("canary %s is not served: %s", rollout.adapter, exc)
            else:
                if record.servable_to(principal):
                    return record, self.model_for(record)
        return self._promoted()

    def _shadow_hook(self, collection: str, rollout: Rollout) -> Callable[[Delivered], None]:
        """Hand a share of delivered answers to the shadow runner, for askers the candidate may be served to."""

        def submit(delivered: Delivered) -> None:
            if self._random() >= rollout.share:
                return
            try:
                record = self.candidate(rollout.adapter)
                if record.servable_to(delivered.principal):  # its answer is never shown, but it reads their blocks
                    self.shadow_runner(collection, record).submit(delivered)
            except Exception as exc:  # the user has their answer: a shadow that cannot run is logged, never shown
                log.warning("shadow %s is not run: %s", rollout.adapter, exc)

        return submit

    def shadow_runner(self, collection: str, record: AdapterRecord) -> ShadowRunner:
        """The process's shadow runner for this collection and candidate (one worker thread each)."""
        key = (collection, record.id)
        with self._adapter_lock:
            if key not in self._shadow_runners:
                self._shadow_runners[key] = ShadowRunner(
                    lambda: self.answerer_with(record, collection),
                    self.in_flight,
                    self.settings.data_dir,
                    adapter_id=record.id,
                    collection=collection,
                    queue_size=self.settings.rollout.shadow_queue,
                    tracer=self.tracer,
                )
            return self._shadow_runners[key]

    @property
    def generator(self) -> AnswerModel:
        """The answering model with the adapter served to everyone now (`model_for`), or the one passed in."""
        return self._promoted()[1]

    def _promoted(self) -> tuple[AdapterRecord | None, AnswerModel]:
        """The adapter served to everyone and its model, read together: a promotion between two reads must not
        pair one adapter's groups with another's model."""
        record = self.adapter
        return record, self._generator if self._generator is not None else self.model_for(record)

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

    def answerer(
        self,
        collection: str | None = None,
        *,
        log_questions: bool = True,
        principal: Principal | None = None,
        shadow: bool = False,
    ) -> Answerer:
        """The answerer for a question. `log_questions=False` for evaluations: their questions are not people's,
        and stay out of review. With `principal`, a user in the canary's share is answered by the candidate; with
        `shadow` (a long-running process: the app), a share of answers is answered again by the shadow candidate."""
        from assistant.question_log import QuestionLog

        name = self.collection(collection)
        rollout = self.rollout() if log_questions else None  # evaluations measure the adapter they are given
        record, generator = self._served_to(principal, rollout) if principal is not None else self._promoted()
        after = None
        if shadow and rollout is not None and rollout.stage == "shadow":
            after = self._shadow_hook(name, rollout)
        logged = log_questions and self.settings.review.log_questions
        log_file = QuestionLog(self.settings.data_dir) if logged else None
        return self._answerer(name, record, generator, log_file, after)

    def answerer_with(self, record: AdapterRecord | None, collection: str | None = None) -> Answerer:
        """An answerer with this adapter (None: the base model), whoever asks: unlogged, never shadowed (a shadow
        answer, a promotion's held-out comparison)."""
        return self._answerer(self.collection(collection), record, self.model_for(record), None, None)

    def _answerer(
        self,
        collection: str,
        record: AdapterRecord | None,
        generator: AnswerModel,
        question_log: QuestionLog | None,
        after: Callable[[Delivered], None] | None,
    ) -> Answerer:
        from assistant.answering import Answerer

        return Answerer(
            self.retriever(collection),
            self.recall_gate,
            generator,
            adapter=record,
            evidence=self.evidence,
            evidence_settings=self.settings.evidence,
            chat_template=self.settings.generator.chat_template,
            tracer=self.tracer,
            question_log=question_log,
            in_flight=self.in_flight,
            after_answer=after,
        )

    def close(self) -> None:
        """Stop shadow work, send buffered traces, then close the store (releasing the index lock) if it was opened."""
        for runner in self._shadow_runners.values():
            runner.stop()
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
    candidates: dict[str, AnswerModel] | None = None,
) -> Iterator[Components]:
    components = Components(settings, embedder=embedder, generator=generator, tracer=tracer, candidates=candidates)
    try:
        yield components
    finally:
        components.close()
