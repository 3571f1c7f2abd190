"""Shadow answers: a candidate adapter answers real questions after the served answer is delivered, never shown.

`ShadowRunner` takes a question once its served answer is complete (`submit`, which never blocks: a full queue
drops the question and counts it), waits until no served answer is being generated in this process (`InFlight`),
and has the candidate answer the same question from the same prepared blocks. A served answer that starts while
a shadow one is being generated stops it at the next token (counted as yielded, not retried): shadow work never
holds the cores a user is waiting on.

Both answers are scored by the same deterministic checks (`scores`), plus their agreement; the scores go on the
question's Langfuse trace (`shadow.*`) and into `shadow.jsonl` in the data directory, which holds adapter ids,
trace ids, cited document ids and numbers: never who asked, the question or document text. A question that was
not answered in shadow (the queue was full, a served answer took the cores, the candidate failed) is one line of
`shadow-skipped.jsonl` (adapter, trace id, reason), so an engineer sees how much of the share was really shadowed.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.house_format import fold
from assistant.jsonl import append_record, read_records

if TYPE_CHECKING:
    from assistant.answering import Answer, Answerer, Delivered
    from assistant.tracing import Tracer

log = logging.getLogger(__name__)
SHADOW_LOG = "shadow.jsonl"
SKIPPED_LOG = "shadow-skipped.jsonl"
SKIP_REASONS = ("dropped", "yielded", "failed")


class InFlight:
    """How many served answers this process is generating now; shadow work waits for none."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = threading.Condition()

    def __enter__(self) -> None:
        with self._idle:
            self._count += 1

    def __exit__(self, *_: object) -> None:
        with self._idle:
            self._count -= 1
            if self._count == 0:
                self._idle.notify_all()

    @property
    def busy(self) -> bool:
        return self._count > 0

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._count == 0, timeout)


def cites_top_sentence(answer: Answer) -> bool | None:
    """Does a quote of the answer hold the sentence the evidence scorer ranked first? None: no scorer ran."""
    if not answer.top_sentences:
        return None
    top = fold(answer.top_sentences[0])
    return any(top in fold(q.text) or (fold(q.text) and fold(q.text) in top) for q in answer.quotes)


def scores(answer: Answer) -> dict[str, Any]:
    """The deterministic checks of one answer, as the shadow log and the canary comparison keep them."""
    verbatim = sum(1 for q in answer.quotes if q.verbatim)  # as the question log counts them
    return {
        "refused": answer.refused,
        "format_valid": answer.format_valid,
        "cited": bool(answer.citations),
        "quotes": len(answer.quotes),
        "quotes_verbatim": verbatim / len(answer.quotes) if answer.quotes else None,
        "label": answer.label,
        "mended": answer.mended,  # its own line did not check out: the user would read the source's sentence
        "answer_score": answer.support.answer_score if answer.support is not None else None,
        "cites_top_sentence": cites_top_sentence(answer),
        "completion_tokens": answer.completion_tokens,
        "seconds": round(answer.seconds, 3),
        "cited_docs": sorted({c.doc_id for c in answer.citations}),
    }


def agreement(served: dict[str, Any], shadow: dict[str, Any]) -> dict[str, bool]:
    return {
        "same_refusal": served["refused"] == shadow["refused"],
        "same_cited_docs": served["cited_docs"] == shadow["cited_docs"],
        "same_label": served["label"] == shadow["label"],
    }


@dataclass(frozen=True)
class ShadowRecord:
    trace_id: str | None  # joins the question log (which holds the question and who asked) where rules allow
    collection: str
    served_adapter: str | None
    shadow_adapter: str
    served: dict[str, Any]
    shadow: dict[str, Any]
    agreement: dict[str, bool]
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))


def read_shadow_log(data_dir: Path) -> list[ShadowRecord]:
    return [ShadowRecord(**r) for r in read_records(data_dir / SHADOW_LOG)]


def read_skipped(data_dir: Path, candidate: str, since: str | None = None) -> dict[str, int]:
    """How many of `candidate`'s shadow questions were not answered, by reason (dropped, yielded, failed)."""
    counts = dict.fromkeys(SKIP_REASONS, 0)
    for r in read_records(data_dir / SKIPPED_LOG):
        if r.get("shadow_adapter") == candidate and (since is None or str(r.get("created", "")) >= since):
            reason = str(r.get("reason", "failed"))  # a line without a reason: not known to be answered
            counts[reason] = counts.get(reason, 0) + 1
    return counts


@dataclass
class ShadowCounts:
    submitted: int = 0
    answered: int = 0
    dropped: int = 0  # the queue was full
    yielded: int = 0  # stopped for a served answer
    failed: int = 0


class ShadowRunner:
    """One worker thread answering queued questions with the candidate, below every served answer."""

    def __init__(
        self,
        candidate: Callable[[], Answerer],
        in_flight: InFlight,
        data_dir: Path,
        *,
        adapter_id: str,
        collection: str,
        queue_size: int,
        tracer: Tracer | None = None,
    ) -> None:
        self._candidate = candidate  # built on first use: a second model loads only once shadowing starts
        self._in_flight = in_flight
        self._log = data_dir / SHADOW_LOG
        self._skipped_log = data_dir / SKIPPED_LOG
        self._adapter_id = adapter_id  # the candidate's registry id, as its answers name it
        self._collection = collection
        self._tracer = tracer
        self._queue: queue.Queue[Delivered] = queue.Queue(maxsize=queue_size)
        self.counts = ShadowCounts()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._work, name="shadow-answers", daemon=True)
        self._thread.start()

    def submit(self, job: Delivered) -> bool:
        """Queue a question whose served answer is complete; False (counted) when the queue is full."""
        self.counts.submitted += 1
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.counts.dropped += 1
            self._skipped(job, "dropped")
            return False
        return True

    def join(self, timeout: float = 600) -> None:
        """Wait until every queued question was handled (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self, timeout: float = 10) -> None:
        """Stop taking work and end the one in progress at its next token; wait for the thread up to `timeout`."""
        self._stopped.set()
        self._thread.join(timeout)

    def _work(self) -> None:
        while not self._stopped.is_set():
            try:
                job = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self._run(job)
            except Exception:  # a shadow failure never reaches a user; it is counted and logged
                self.counts.failed += 1
                log.warning("a shadow answer failed", exc_info=True)
                self._skipped(job, "failed")
            finally:
                self._queue.task_done()

    def _run(self, job: Delivered) -> None:
        while not self._in_flight.wait_idle(timeout=0.5):
            if self._stopped.is_set():
                return
        answerer = self._candidate()
        pieces = answerer.answer_prepared(job.principal, job.question, job.prepared, job.history)
        try:
            while True:
                next(pieces)
                if self._in_flight.busy or self._stopped.is_set():  # a user is waiting (or the app stops): stop here
                    pieces.close()
                    self.counts.yielded += 1
                    self._skipped(job, "yielded")
                    return
        except StopIteration as done:
            shadow: Answer = done.value
        served_scores, shadow_scores = scores(job.answer), scores(shadow)
        record = ShadowRecord(
            trace_id=job.answer.trace_id,
            collection=self._collection,
            served_adapter=job.answer.adapter,
            shadow_adapter=answerer.adapter_id or "base",
            served=served_scores,
            shadow=shadow_scores,
            agreement=agreement(served_scores, shadow_scores),
        )
        append_record(self._log, asdict(record))
        self.counts.answered += 1
        self._score_trace(record)

    def _skipped(self, job: Delivered, reason: str) -> None:
        record = {
            "trace_id": job.answer.trace_id,
            "collection": self._collection,
            "shadow_adapter": self._adapter_id,
            "reason": reason,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        try:
            append_record(self._skipped_log, record)
        except OSError:  # counting must never break the runner; the in-memory counts still hold it
            log.warning("could not record a skipped shadow question in %s", self._skipped_log, exc_info=True)

    def _score_trace(self, record: ShadowRecord) -> None:
        if self._tracer is None or not self._tracer.enabled or record.trace_id is None:
            return
        numbers = {f"shadow.{k}": v for k, v in record.shadow.items() if isinstance(v, bool | int | float)}
        numbers.update({f"shadow.{k}": v for k, v in record.agreement.items()})
        for name, value in numbers.items():
            self._tracer.score(record.trace_id, name, float(value))
