"""Answering: principal -> retrieval -> recall gate -> generation -> citation check -> answer.

When the recall gate finds no approved source, the answer is a refusal and nothing is generated. The generated
text is checked by `assistant.citation_check` (the house format, `[n]` markers, quote lines and what they verify).
Sources are only chunks the principal was allowed to retrieve. A follow-up question is retrieved together with the
previous question, a question of its own alone (`assistant.follow_up`); the prompt carries a bounded history of
past answers without their quote lines, and only those whose cited documents the principal may still read, asked
of the store with their groups when the question is asked (a regroup takes an answer out).

With an adapter, the prompt is the short one it was trained with, showing its `context_blocks`; an adapter is
only served to principals who hold every group its training text came from (otherwise: a refusal saying so).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Generator as GeneratorType
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from assistant.access import Principal
from assistant.adapters import AdapterRecord
from assistant.answer_line import mended_answer
from assistant.answer_model import AnswerModel, Usage
from assistant.answer_support import Label, Support, answer_text, check_support
from assistant.citation_check import CheckedText, QuoteLine, check_citations
from assistant.evidence import EvidenceSelection, SentenceScorer
from assistant.follow_up import retrieval_query
from assistant.house_format import without_emphasis
from assistant.prompt import (
    FEW_SHOT,
    ContextBlock,
    Turn,
    chat_messages,
    render_prompt,
    render_tuned_prompt,
)
from assistant.question_log import LoggedQuestion, Outcome, QuestionLog
from assistant.quote_constraint import FormatRequest
from assistant.recall_gate import RecallCheck, RecallGate
from assistant.retriever import Retrieval, RetrievedChunk, Retriever, check_question
from assistant.settings import EvidenceSettings
from assistant.shadow import InFlight
from assistant.tracing import QuestionTrace, Tracer

REFUSAL = (
    "I can't find an answer to that in the documents you have access to, so I won't guess. "
    "Try rephrasing, or ask the document's owner."
)
# Refused before generation although readable passages were found (the recall gate or the evidence scorer was not
# sure enough): the documents may well answer, so the refusal must not say they do not; the passages are shown.
NOT_CONFIDENT = (
    "I'm not confident enough to answer that from the documents you can read, so I won't guess. "
    "Check the closest passages, rephrase the question, or ask the document's owner."
)
ADAPTER_NOT_SERVED = (
    "I can't answer you with this assistant's tuned model: it was trained on documents of groups you are not in. "
    "Ask an administrator to serve you another adapter."
)


class AnswerStream:
    """One answer as it is written: iterate it for the text as it streams ("" while the model is not writing: the
    reader gets control back and may stop), then read the checked `Answer` from `.answer` (reading it first reads
    the rest). `close()`, or leaving a `with` block, stops decoding at the next token."""

    def __init__(self, steps: GeneratorType[str, None, Answer]) -> None:
        self._steps = steps
        self._answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._answer is not None:
            raise StopIteration
        try:
            return next(self._steps)
        except StopIteration as done:
            self._answer = done.value
            raise StopIteration from None

    @property
    def answer(self) -> Answer:
        for _ in self:
            pass
        if self._answer is None:
            raise RuntimeError("the answer stream was closed before the answer was complete")
        return self._answer

    def close(self) -> None:
        self._steps.close()

    def __enter__(self) -> AnswerStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@dataclass(frozen=True)
class Citation:
    n: int
    doc_id: str
    title: str
    path: str
    section: str | None


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    outcome: Outcome  # set where it is decided: the recall gate, the adapter's groups, or the model's own refusal
    citations: list[Citation]
    retrieved: list[RetrievedChunk]
    model: str | None
    adapter: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    removed_citations: int = 0
    unsupported_quotes: list[str] = field(default_factory=list)  # every quote not verified
    trace_id: str | None = None  # the Langfuse trace, for feedback; None when tracing is off
    format_valid: bool = False  # the generated text followed the house format (a gate refusal: False)
    quotes: list[QuoteLine] = field(default_factory=list)
    statement: str = ""  # the answer without its quote lines and citations (what F1 is scored on)
    recall: RecallCheck | None = None  # the recall gate's evidence and decision
    fallback_sentences: list[str] = field(default_factory=list)  # claims no block they cite holds: unverified
    support: Support | None = None  # the label a reader sees (`assistant.answer_support`); None: refused
    evidence_score: float | None = None  # the evidence scorer's best sentence score; None: no scorer ran
    # For fact-level evaluation: how many of `retrieved` (first) the model read, or would have read had it not been
    # refused before generation; and the evidence scorer's best sentences, best first (folded; empty: no scorer).
    shown: int = 0
    top_sentences: tuple[str, ...] = ()
    mended: bool = False  # rewritten by `assistant.answer_line.mended_answer`: the model's line did not verify

    @property
    def label(self) -> Label | None:
        return self.support.label if self.support is not None else None

    @property
    def refused(self) -> bool:
        return self.outcome != "answered"

    @property
    def generated(self) -> bool:
        """The model wrote this answer (an answer, or its refusal sentence); False: refused before generation."""
        return self.outcome in ("answered", "refused-model")

    @classmethod
    def refusal(
        cls,
        question: str,
        retrieved: list[RetrievedChunk],
        seconds: float,
        trace_id: str | None,
        recall: RecallCheck | None,
        outcome: Outcome = "refused-recall",
    ) -> Answer:
        """Nothing generated: the recall gate found no approved source (or the adapter is not for this user)."""
        text = ADAPTER_NOT_SERVED if outcome == "refused-adapter" else NOT_CONFIDENT if retrieved else REFUSAL
        return cls(
            question, text, outcome, [], retrieved, None, None, seconds=seconds, trace_id=trace_id, recall=recall
        )


@dataclass(frozen=True)
class Prepared:
    """Everything decided before the model writes: what was retrieved, the recall gate's verdict, the evidence
    scorer's selection, the blocks the model reads and, when it is refused before generation, why."""

    retrieval: Retrieval
    recall: RecallCheck
    selection: EvidenceSelection | None
    shown: list[RetrievedChunk]  # the blocks the model reads (or would have read), best first
    refusal: Outcome | None

    @property
    def read_first(self) -> list[RetrievedChunk]:
        """Every retrieved block, those the model reads first and in its order: block [n] is the n-th."""
        return _shown_first(self.shown, self.retrieval.chunks)

    @property
    def top_sentences(self) -> tuple[str, ...]:
        """The scorer's two best sentences (what fact-level evaluation checks: top-1 and top-2)."""
        return _top(self.selection)


@dataclass(frozen=True)
class Delivered:
    """A question whose answer the model wrote and the user has in full: what a shadow answer starts from."""

    principal: Principal
    question: str
    history: tuple[Turn, ...]
    prepared: Prepared
    answer: Answer


class Answerer:
    """principal -> retrieval -> recall gate -> generation -> citation check, one method per step."""

    def __init__(
        self,
        retriever: Retriever,
        gate: RecallGate,
        generator: AnswerModel,
        *,
        adapter: AdapterRecord | None = None,
        evidence: SentenceScorer | None = None,
        evidence_settings: EvidenceSettings | None = None,
        max_history: int = 3,
        chat_template: bool = False,
        tracer: Tracer | None = None,
        question_log: QuestionLog | None = None,
        in_flight: InFlight | None = None,
        after_answer: Callable[[Delivered], None] | None = None,
    ) -> None:
        self.retriever = retriever
        self.gate = gate
        self.generator = generator
        self.adapter = adapter  # the record of the adapter merged into `generator`, if any
        self.evidence = evidence  # None: blocks in retrieval order, every sentence quotable, no evidence refusal
        self.evidence_settings = evidence_settings or EvidenceSettings()
        self.max_history = max_history
        self.chat_template = chat_template  # an instruct base model without an adapter: its own chat template
        self.tracer = tracer
        self.question_log = question_log  # None: questions are not logged for review (evaluations)
        self.in_flight = in_flight  # counts the answers being generated for users (shadow work waits for none)
        self.after_answer = after_answer  # called with each answer the model wrote, once it is complete (shadow)

    @property
    def adapter_id(self) -> str | None:
        return self.adapter.id if self.adapter is not None else self.generator.adapter_id

    def ask(
        self, principal: Principal, question: str, history: Sequence[Turn] = (), *, session_id: str | None = None
    ) -> Answer:
        return self.stream(principal, question, history, session_id=session_id).answer

    def stream(
        self, principal: Principal, question: str, history: Sequence[Turn] = (), *, session_id: str | None = None
    ) -> AnswerStream:
        """The answer as it is generated (iterate it for text), then the checked `Answer` (`.answer`); traced when
        tracing is on. Closing it early (a reader that stops) stops decoding at the next token. A question over
        `retrieval.max_question_chars` raises QuestionTooLongError here, before anything is traced or logged."""
        check_question(question, self.retriever.settings.max_question_chars)
        return AnswerStream(self._traced(principal, question, history, session_id))

    def prepare(self, principal: Principal, question: str, history: Sequence[Turn] = ()) -> Prepared:
        """The steps before generation alone, untraced and unlogged (fact-level benchmarks: where the answer's facts
        are, and whether the question would be refused, without waiting for the model)."""
        check_question(question, self.retriever.settings.max_question_chars)
        return self._prepare(principal, question, history, QuestionTrace.off())

    def _traced(
        self, principal: Principal, question: str, history: Sequence[Turn], session_id: str | None
    ) -> GeneratorType[str, None, Answer]:
        trace = self.tracer.start_question(principal, question, session_id) if self.tracer else QuestionTrace.off()
        try:
            with self.in_flight if self.in_flight is not None else nullcontext():  # shadow work waits meanwhile
                started = time.perf_counter()
                prepared = self._prepare(principal, question, history, trace)
                # Closing this closes `_answer` too: the open generation observation and the decoding thread end now.
                answer = yield from self._answer(principal, question, history, prepared, trace, started)
        except GeneratorExit:  # the reader stopped (a closed chat tab, Stop, a new question)
            trace.finish({"stopped": "before the answer was complete"})
            raise
        except BaseException as exc:
            trace.fail(exc)
            raise
        _finish(trace, answer)
        if self.question_log is not None:
            self.question_log.record(logged_question(principal, self.retriever.collection, answer))
        if self.after_answer is not None and prepared.refusal is None:
            self.after_answer(Delivered(principal, question, tuple(history), prepared, answer))
        return answer

    def answer_prepared(
        self, principal: Principal, question: str, prepared: Prepared, history: Sequence[Turn] = ()
    ) -> GeneratorType[str, None, Answer]:
        """This answerer's model writing from blocks another answerer prepared (a shadow answer: the same blocks,
        another adapter), untraced and unlogged. `prepared` must not be a refusal."""
        if prepared.refusal is not None:
            raise ValueError(f"nothing to write: the question was refused before generation ({prepared.refusal})")
        return self._answer(principal, question, history, prepared, QuestionTrace.off(), time.perf_counter())

    def _answer(
        self,
        principal: Principal,
        question: str,
        history: Sequence[Turn],
        prepared: Prepared,
        trace: QuestionTrace,
        started: float,
    ) -> GeneratorType[str, None, Answer]:  # a generator, not an Iterator: `stream` closes it
        retrieval, recall, selection, shown = prepared.retrieval, prepared.recall, prepared.selection, prepared.shown
        evidence_score = selection.best if selection is not None else None
        if prepared.refusal is not None:
            trace.score_answer(recall, None)
            refused = Answer.refusal(
                question, retrieval.chunks, time.perf_counter() - started, trace.trace_id, recall, prepared.refusal
            )
            # What the model would have read, first (as an answer's `retrieved` lists it): for fact-level evaluation.
            refused = dataclasses.replace(
                refused,
                retrieved=prepared.read_first,
                evidence_score=evidence_score,
                shown=len(shown),
                top_sentences=prepared.top_sentences,
            )
            yield refused.answer
            return refused
        read = shown  # what the model reads: the shown blocks, or with evidence.focus only their best sentences
        if selection is not None and self.evidence_settings.focus and selection.preferred_quotes:
            shown = shown[: len(selection.preferred_quotes)]  # the blocks holding the best sentences come first
            # (no quotable sentence at all: the model reads the whole blocks, as without focus)
            read = [dataclasses.replace(c, text=selection.focused_text(n, c.text)) for n, c in enumerate(shown, 1)]
        # The scorer's verdict decides whether to answer: once it has said the blocks answer, the model may not refuse.
        format_request = FormatRequest.of(
            [c.text for c in read],
            question,
            selection.preferred_quotes if selection is not None else None,
            refusal_allowed=selection is None or not self.evidence_settings.refuse,
        )
        prompt = self._prompt(question, read, self._readable_history(principal, history))
        observation = trace.generation(
            prompt, question, len(shown), self.generator.model_id, self.adapter_id, self.generator.backend
        )
        with observation as generation:
            text, usage = yield from self._generate(prompt, format_request, generation)
            checked = check_citations(text, shown)
            support = None if checked.refusal else self._support(question, checked, shown, selection)
            prompt_tokens, completion_tokens = usage.prompt_tokens, usage.completion_tokens
            cited = [shown[n - 1].doc_id for n in checked.cited]
            generation.update(  # what the model wrote, as it wrote it
                **trace.generation_result(checked, cited, prompt_tokens, completion_tokens, self.adapter_id)
            )
        mended = None  # what the user reads first must say what its first quote says (`assistant.answer_line`)
        if self.evidence_settings.extract_unverified and support is not None and support.label != "supported":
            mended = mended_answer(checked, shown, selection)
        if mended is not None:
            checked = check_citations(mended, shown)
            support = self._support(question, checked, shown, selection, mended=True)
        trace.score_answer(recall, checked, support.label if support is not None else None)
        return Answer(
            question=question,
            answer=REFUSAL if checked.refusal else without_emphasis(checked.text),
            outcome="refused-model" if checked.refusal else "answered",
            citations=[_citation(n, shown[n - 1]) for n in checked.cited],
            retrieved=_shown_first(shown, retrieval.chunks),  # [n] is retrieved[n - 1]
            model=self.generator.model_id,
            adapter=self.adapter_id,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            seconds=time.perf_counter() - started,
            removed_citations=checked.removed,
            unsupported_quotes=checked.unsupported_quotes,
            trace_id=trace.trace_id,
            format_valid=checked.format_valid,
            quotes=checked.quotes,
            statement=checked.statement,
            recall=recall,
            fallback_sentences=checked.fallback_sentences,
            support=support,
            evidence_score=evidence_score,
            shown=len(shown),
            top_sentences=prepared.top_sentences,
            mended=mended is not None,
        )

    # -- the steps ----------------------------------------------------------------------------------
    def _prepare(self, principal: Principal, question: str, history: Sequence[Turn], trace: QuestionTrace) -> Prepared:
        retrieval = self._retrieve(principal, self._retrieval_query(question, history), trace)
        refusal: Outcome | None = None
        selection = self._select(principal, question, retrieval)
        recall = self._check_recall(retrieval, selection, trace)
        if not recall.answerable:
            refusal = "refused-recall"
        elif self.adapter is not None and not self.adapter.servable_to(principal):
            refusal = "refused-adapter"  # fail closed: the adapter may have memorised text this user may not read
        elif selection is not None and not selection.answerable and self.evidence_settings.refuse:
            refusal = "refused-evidence"  # no sentence of the approved blocks answers the question
        shown = selection.blocks if selection is not None else self._shown(retrieval.chunks)
        return Prepared(retrieval, recall, selection, shown, refusal)

    def _retrieval_query(self, question: str, history: Sequence[Turn]) -> str:
        """A follow-up ("and for contractors?") is retrieved together with the question before it (the user's own
        words; the search is the principal's like any other); a question of its own is retrieved alone, and so is a
        follow-up the two would make too long to search."""
        previous = history[-1].question if history and self.max_history > 0 else None
        query = retrieval_query(question, previous)
        return query if len(query) <= self.retriever.settings.max_question_chars else question

    def _readable_history(self, principal: Principal, history: Sequence[Turn]) -> list[Turn]:
        """The past turns the prompt may carry: those whose answer cites documents, every one of which the principal
        may read now (asked of the store with their groups: a document regrouped or deleted since takes the
        answers it backed out of the conversation, and an answer citing nothing shows no right to read it)."""
        readable = self.retriever.readable_doc_ids(principal, (d for turn in history for d in turn.cited))
        return [turn for turn in history if turn.cited and set(turn.cited) <= readable]

    def _retrieve(self, principal: Principal, query: str, trace: QuestionTrace) -> Retrieval:
        settings = self.retriever.settings
        inputs = trace.retrieval_input(query, principal, settings.top_k, settings.mode)
        with trace.observe("retrieval", "retriever", input=inputs) as span:
            retrieval = self.retriever.search(principal, query)
            span.update(output=trace.retrieval_output(retrieval))
        return retrieval

    def _check_recall(
        self, retrieval: Retrieval, selection: EvidenceSelection | None, trace: QuestionTrace
    ) -> RecallCheck:
        check = self.gate.check(retrieval, selection is not None and selection.first_accepted)
        trace.recall_check(check)
        return check

    def _shown(self, chunks: list[RetrievedChunk]) -> list[RetrievedChunk]:
        """The blocks the model sees: an adapter sees as many as it was trained with."""
        return chunks[: self.adapter.context_blocks] if self.adapter is not None else chunks

    def _select(self, principal: Principal, question: str, retrieval: Retrieval) -> EvidenceSelection | None:
        """With an evidence scorer: every quotable sentence of the retrieved blocks scored against the question;
        the blocks shown in the order of their best sentence, the best sentences the only ones to quote. None
        without a scorer, or for a principal outside the groups its training text came from."""
        if self.evidence is None or not self.evidence.servable_to(principal) or not retrieval.chunks:
            return None
        chunks = retrieval.chunks
        ranked = self.evidence.rank(question, [c.text for c in chunks], [_heading(c) for c in chunks])
        return EvidenceSelection.of(ranked, retrieval.chunks, self._shown, self.evidence_settings)

    def _support(
        self,
        question: str,
        checked: CheckedText,
        shown: list[RetrievedChunk],
        selection: EvidenceSelection | None,
        *,
        mended: bool = False,
    ) -> Support:
        verified = [q.text for q in checked.quotes if q.verified]
        score, first, answer_score = None, None, None
        if selection is not None and verified:
            score = max(selection.score_of(q) for q in verified)
            first = any(selection.ranks_first(q) for q in verified)
            assert self.evidence is not None  # a selection comes from the scorer
            answer_score = self.evidence.answer_score(question, answer_text(checked.statement))
        return check_support(
            checked.statement,
            verified,
            question=question,
            cited_blocks=[shown[n - 1].passage for n in checked.cited],
            cited_headings=[_heading(shown[n - 1]) for n in checked.cited],
            unverified=len(checked.unsupported_quotes),
            fallback_sentences=len(checked.fallback_sentences),
            quote_score=score,
            quote_ranked_first=first,
            answer_score=answer_score,
            min_score=self.evidence_settings.min_score,
            mended=mended,
        )

    def _prompt(self, question: str, shown: list[RetrievedChunk], history: Sequence[Turn]) -> str:
        blocks = [ContextBlock(c.title, c.section, c.text) for c in shown]
        if self.adapter is not None:  # the short prompt it was trained with: it has learned the format
            return render_tuned_prompt(question, blocks, history, max_history=self.max_history)
        # Without an adapter the base model learns the format from worked examples.
        examples = FEW_SHOT if self.generator.adapter_id is None else ()
        if self.chat_template and self.generator.adapter_id is None:
            messages = chat_messages(question, blocks, history, max_history=self.max_history, examples=examples)
            return self.generator.chat_prompt(messages)
        return render_prompt(question, blocks, history, max_history=self.max_history, examples=examples)

    def _generate(
        self, prompt: str, format_request: FormatRequest, generation: Any
    ) -> GeneratorType[str, None, tuple[str, Usage]]:
        """Stream the model's pieces (constrained to the house format over the shown blocks; "" while waiting
        for the model); return the whole text and its token counts. The space the answer cue is followed by in
        training is not shown."""
        pieces: list[str] = []
        shown = False  # some text was shown
        stream = self.generator.stream(prompt, format_request=format_request)
        try:  # a reader who stops closes this generator: the model's stream is closed with it, and stops decoding
            while True:
                try:
                    piece = next(stream)
                except StopIteration as finished:
                    return "".join(pieces), finished.value
                if piece:
                    if not pieces:
                        generation.update(completion_start_time=datetime.now(UTC))
                    pieces.append(piece)
                if not shown:
                    piece = piece.lstrip()
                    shown = bool(piece)
                yield piece
        finally:
            stream.close()


def _finish(trace: QuestionTrace, answer: Answer) -> None:
    cited = [c.doc_id for c in answer.citations]
    trace.finish_answer(answer.answer, answer.refused, cited, answer.model, answer.adapter)


def logged_question(principal: Principal, collection: str, answer: Answer) -> LoggedQuestion:
    """What the question log keeps of an answer: its outcome and the checks' results, never its text."""
    check = answer.recall
    return LoggedQuestion(
        user_id=principal.user_id,
        groups=sorted(principal.groups),
        question=answer.question,
        collection=collection,
        outcome=answer.outcome,
        evidence=round(check.evidence.score, 4) if check else None,
        threshold=check.threshold if check else None,
        retrieved=[
            {"rank": c.rank, "doc_id": c.doc_id, "title": c.title, "groups": list(c.groups), "score": c.score}
            for c in answer.retrieved
        ],
        cited=[c.doc_id for c in answer.citations],
        format_valid=answer.format_valid,
        quotes=len(answer.quotes),
        quotes_verbatim=sum(q.verbatim for q in answer.quotes),
        removed_citations=answer.removed_citations,
        trace_id=answer.trace_id,
        adapter=answer.adapter,
        label=answer.support.label if answer.support is not None else None,
        mended=answer.mended,
        seconds=round(answer.seconds, 3),
    )


def _shown_first(shown: list[RetrievedChunk], retrieved: list[RetrievedChunk]) -> list[RetrievedChunk]:
    """Every retrieved block, those the model reads first and in its order: block [n] is the n-th."""
    return [*shown, *(c for c in retrieved if c not in shown)]


def _top(selection: EvidenceSelection | None) -> tuple[str, ...]:
    """The scorer's two best sentences (what fact-level evaluation checks: top-1 and top-2)."""
    return tuple(selection.best_sentences(2)) if selection is not None else ()


def _heading(chunk: RetrievedChunk) -> str:
    """A block's title and section: what the scorer reads a sentence under, and what a label's heading check reads."""
    return f"{chunk.title} {chunk.section}" if chunk.section else chunk.title


def _citation(n: int, chunk: RetrievedChunk) -> Citation:
    return Citation(n, chunk.doc_id, chunk.title, chunk.path, chunk.section)
