"""Answering: principal -> retrieval -> recall gate -> generation -> citation check -> answer.

When the recall gate finds no approved source, the answer is a refusal and nothing is generated. Citations are
`[n]` markers pointing at the numbered context blocks; a marker that points at no block is removed and counted,
and quoted passages are checked against the text of the blocks the answer cites. Sources are only chunks the
principal was allowed to retrieve. Follow-up questions are retrieved together with the previous question, and
the prompt carries a bounded history.
"""

from __future__ import annotations

import re
import time
from collections.abc import Generator as GeneratorType
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from assistant.access import Principal
from assistant.generator import Generator
from assistant.prompt import FEW_SHOT, ContextBlock, Turn, render_prompt
from assistant.recall_gate import RecallCheck, RecallGate
from assistant.retriever import Retrieval, RetrievedChunk, Retriever
from assistant.tracing import QuestionTrace, Tracer

REFUSAL = (
    "I can't find an answer to that in the documents you have access to, so I won't guess. "
    "Try rephrasing, or ask the document's owner."
)
_CITATION = re.compile(r"\[(\d+)\]")
_QUOTE = re.compile(r"[\"“]([^\"”]{20,})[\"”]")


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
    refused: bool
    citations: list[Citation]
    retrieved: list[RetrievedChunk]
    model: str | None
    adapter: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    removed_citations: int = 0
    unsupported_quotes: list[str] = field(default_factory=list)
    trace_id: str | None = None  # the Langfuse trace, for feedback; None when tracing is off

    @classmethod
    def refusal(cls, question: str, retrieved: list[RetrievedChunk], seconds: float, trace_id: str | None) -> Answer:
        """The recall gate found no approved source: the fixed refusal, nothing generated."""
        return cls(question, REFUSAL, True, [], retrieved, None, None, seconds=seconds, trace_id=trace_id)


@dataclass(frozen=True)
class CheckedText:
    text: str
    cited: list[int]  # block numbers, in order of first use
    removed: int
    unsupported_quotes: list[str]


def check_citations(text: str, blocks: Sequence[RetrievedChunk]) -> CheckedText:
    """Drop `[n]` markers that point at no block; list quotes that no cited block contains."""
    removed = 0
    cited: list[int] = []

    def keep_or_drop(match: re.Match[str]) -> str:
        nonlocal removed
        n = int(match.group(1))
        if 1 <= n <= len(blocks):
            if n not in cited:
                cited.append(n)
            return match.group(0)
        removed += 1
        return ""

    cleaned = _CITATION.sub(keep_or_drop, text)
    cleaned = re.sub(r"[ \t]+([.,;:])", r"\1", re.sub(r"[ \t]{2,}", " ", cleaned)).strip()
    sources = " ".join(_normalise(blocks[n - 1].text) for n in cited)
    unsupported = [q for q in _QUOTE.findall(cleaned) if _normalise(q) not in sources]
    return CheckedText(cleaned, cited, removed, unsupported)


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


class Answerer:
    """principal -> retrieval -> recall gate -> generation -> citation check, one method per step."""

    def __init__(
        self,
        retriever: Retriever,
        gate: RecallGate,
        generator: Generator,
        *,
        max_history: int = 3,
        tracer: Tracer | None = None,
    ) -> None:
        self.retriever = retriever
        self.gate = gate
        self.generator = generator
        self.max_history = max_history
        self.tracer = tracer

    def ask(
        self, principal: Principal, question: str, history: Sequence[Turn] = (), *, session_id: str | None = None
    ) -> Answer:
        final: Answer | None = None
        for item in self.stream(principal, question, history, session_id=session_id):
            if isinstance(item, Answer):
                final = item
        assert final is not None  # stream always ends with the Answer
        return final

    def stream(
        self, principal: Principal, question: str, history: Sequence[Turn] = (), *, session_id: str | None = None
    ) -> Iterator[str | Answer]:
        """Pieces of the answer as they are generated, then the checked `Answer`; traced when tracing is on."""
        trace = self.tracer.start_question(principal, question, session_id) if self.tracer else QuestionTrace.off()
        steps = self._answer(principal, question, history, trace)
        answer: Answer | None = None
        try:
            for item in steps:
                if isinstance(item, Answer):
                    answer = item
                yield item
        except GeneratorExit:  # the reader stopped (a closed chat tab, or a `break` once it had the Answer)
            steps.close()  # ends the open generation observation and the decoding thread now
            trace.finish(self._outcome(trace, answer) if answer else {"stopped": "before the answer was complete"})
            raise
        except BaseException as exc:
            trace.fail(exc)
            raise
        assert answer is not None  # _answer always ends with the Answer
        trace.finish(self._outcome(trace, answer))

    def _answer(
        self, principal: Principal, question: str, history: Sequence[Turn], trace: QuestionTrace
    ) -> GeneratorType[str | Answer, None, None]:  # a generator, not an Iterator: `stream` closes it
        started = time.perf_counter()
        retrieval = self._retrieve(principal, self._retrieval_query(question, history), trace)
        if not self._check_recall(retrieval, trace).answerable:
            yield REFUSAL
            yield Answer.refusal(question, retrieval.chunks, time.perf_counter() - started, trace.trace_id)
            return
        prompt = self._prompt(question, retrieval, history)
        with self._generation_observation(trace, prompt, question, retrieval) as generation:
            text = yield from self._generate(prompt, generation)
            checked = check_citations(text, retrieval.chunks)
            prompt_tokens = self.generator.count_tokens(prompt, as_prompt=True)
            completion_tokens = self.generator.count_tokens(text)
            generation.update(**self._generation_result(trace, retrieval, checked, prompt_tokens, completion_tokens))
        yield Answer(
            question=question,
            answer=checked.text,
            refused=False,
            citations=[_citation(n, retrieval.chunks[n - 1]) for n in checked.cited],
            retrieved=retrieval.chunks,
            model=self.generator.model_id,
            adapter=self.generator.adapter_id,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            seconds=time.perf_counter() - started,
            removed_citations=checked.removed,
            unsupported_quotes=checked.unsupported_quotes,
            trace_id=trace.trace_id,
        )

    # -- the steps ----------------------------------------------------------------------------------
    def _retrieval_query(self, question: str, history: Sequence[Turn]) -> str:
        """A follow-up ("and for contractors?") is retrieved together with the question before it."""
        return f"{history[-1].question}\n{question}" if history and self.max_history > 0 else question

    def _retrieve(self, principal: Principal, query: str, trace: QuestionTrace) -> Retrieval:
        settings = self.retriever.settings
        inputs = trace.retrieval_input(query, principal, settings.top_k, settings.mode)
        with trace.observe("retrieval", "retriever", input=inputs) as span:
            retrieval = self.retriever.search(principal, query)
            span.update(output=trace.retrieval_output(retrieval))
        return retrieval

    def _check_recall(self, retrieval: Retrieval, trace: QuestionTrace) -> RecallCheck:
        check = self.gate.check(retrieval)
        trace.recall_check(check)
        return check

    def _prompt(self, question: str, retrieval: Retrieval, history: Sequence[Turn]) -> str:
        blocks = [ContextBlock(c.title, c.section, c.text) for c in retrieval.chunks]
        # Without an adapter the base model learns the format from worked examples; an adapter has learned it.
        examples = FEW_SHOT if self.generator.adapter_id is None else ()
        return render_prompt(question, blocks, history, max_history=self.max_history, examples=examples)

    def _generation_observation(self, trace: QuestionTrace, prompt: str, question: str, retrieval: Retrieval) -> Any:
        return trace.observe(
            "generation",
            "generation",
            model=self.generator.model_id,
            version=self.generator.adapter_id,
            input=trace.generation_input(prompt, question, len(retrieval.chunks)),
            metadata={"adapter": self.generator.adapter_id},
        )

    def _generate(self, prompt: str, generation: Any) -> GeneratorType[str, None, str]:
        """Stream the model's pieces; return the whole text."""
        pieces: list[str] = []
        for piece in self.generator.stream(prompt):
            if not pieces:
                generation.update(completion_start_time=datetime.now(UTC))
            pieces.append(piece)
            yield piece
        return "".join(pieces)

    def _generation_result(
        self, trace: QuestionTrace, retrieval: Retrieval, checked: CheckedText, prompt_tokens: int, completion: int
    ) -> dict[str, Any]:
        cited = [retrieval.chunks[n - 1].doc_id for n in checked.cited]
        return {
            "output": trace.answer_output(checked.text, False, cited),
            "usage_details": {"input": prompt_tokens, "output": completion},
            "metadata": {
                "adapter": self.generator.adapter_id,
                "removed_citations": checked.removed,
                "unsupported_quotes": len(checked.unsupported_quotes),
            },
        }

    @staticmethod
    def _outcome(trace: QuestionTrace, answer: Answer) -> dict[str, object]:
        return {
            **trace.answer_output(answer.answer, answer.refused, [c.doc_id for c in answer.citations]),
            "model": answer.model,
            "adapter": answer.adapter,
        }


def _citation(n: int, chunk: RetrievedChunk) -> Citation:
    return Citation(n, chunk.doc_id, chunk.title, chunk.path, chunk.section)
