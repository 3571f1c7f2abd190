"""Langfuse tracing: one trace per question, with observations for retrieval, the recall check and generation,
and scores on that trace (user feedback, evaluation metrics).

With no Langfuse keys and server configured nothing is constructed and nothing is sent: every call below is then a
no-op, so the answer pipeline never branches on whether tracing is on. What leaves the process is decided here, in
one place. Always sent: the user id and groups, the question, document ids, titles, groups and scores, the recall
check's evidence, model, adapter, token counts and timings. Document text (retrieved chunks, the prompt that
contains them, the answer, which may quote them, and an evaluation's reference answers) is sent only with
`tracing.include_document_text`, because people who read traces may not be in the documents' groups.

Observations are started explicitly (never attached as the current OpenTelemetry context), so a trace can stay
open across the `yield`s of a streaming answer without leaking context into the consumer's thread. A failure
inside the tracing SDK is logged and never fails an answer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Literal

from assistant.access import Principal
from assistant.errors import TracingError
from assistant.settings import TracingSettings

if TYPE_CHECKING:
    from langfuse import Langfuse

    from assistant.citation_check import CheckedText
    from assistant.recall_gate import RecallCheck
    from assistant.retriever import Retrieval

FEEDBACK_SCORE = "user-feedback"
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
ObservationType = Literal["retriever", "guardrail", "generation"]
log = logging.getLogger(__name__)


class _Unrecorded:
    """Stands in for an observation when tracing is off (or the SDK failed to start one)."""

    def update(self, **_: Any) -> None:
        return None


def _describe(exc: BaseException) -> str:
    """An error for a trace: its type and a short message (a message can carry text from a document)."""
    return f"{type(exc).__name__}: {str(exc)[:200]}"


class QuestionTrace:
    """The trace of one question. Close it with `finish` (the outcome) or `fail` (an error)."""

    def __init__(self, root: Any | None, attributes: dict[str, Any], include_document_text: bool) -> None:
        self._root = root
        self._attributes = attributes
        self.include_document_text = include_document_text

    @classmethod
    def off(cls) -> QuestionTrace:
        return cls(None, {}, False)

    @property
    def trace_id(self) -> str | None:
        return str(self._root.trace_id) if self._root is not None else None

    @contextmanager
    def observe(self, name: str, as_type: ObservationType, **fields: Any) -> Iterator[Any]:
        """A child observation lasting as long as the block. A reader who stops streaming marks it WARNING,
        an exception ERROR."""
        child = self._start_child(name, as_type, fields)
        if child is None:
            yield _Unrecorded()
            return
        try:
            yield child
        except GeneratorExit:
            child.update(level="WARNING", status_message="the reader stopped before the answer was complete")
            raise
        except BaseException as exc:
            child.update(level="ERROR", status_message=_describe(exc))
            raise
        finally:
            child.end()

    def _start_child(self, name: str, as_type: ObservationType, fields: dict[str, Any]) -> Any | None:
        if self._root is None:
            return None
        from langfuse import propagate_attributes

        try:
            with propagate_attributes(**self._attributes):
                return self._root.start_observation(name=name, as_type=as_type, **fields)
        except Exception:
            log.warning("Langfuse could not start the %s observation; answering goes on untraced", name, exc_info=True)
            return None

    # -- what each observation carries --------------------------------------------------------------
    def retrieval_input(self, query: str, principal: Principal, top_k: int, mode: str) -> dict[str, Any]:
        return {"query": query, "groups": sorted(principal.groups), "top_k": top_k, "mode": mode}

    def retrieval_output(self, retrieval: Retrieval) -> list[dict[str, Any]]:
        results = []
        for chunk in retrieval.chunks:
            item: dict[str, Any] = {
                "rank": chunk.rank,
                "doc_id": chunk.doc_id,
                "chunk_id": chunk.chunk_id,
                "score": round(chunk.score, 6),
                "title": chunk.title,
                "groups": list(chunk.groups),
            }
            if self.include_document_text:
                item["text"] = chunk.text
            results.append(item)
        return results

    def recall_check(self, check: RecallCheck) -> None:
        """The recall gate's decision, as a guardrail observation of its own."""
        evidence = {**asdict(check.evidence), "threshold": check.threshold}
        with self.observe("recall-check", "guardrail", input=evidence) as span:
            level = "DEFAULT" if check.answerable else "WARNING"  # a refusal stands out in the trace list
            span.update(output={"answerable": check.answerable, "vouched_by_evidence": check.vouched}, level=level)

    def generation_input(self, prompt: str, question: str, blocks: int) -> Any:
        return prompt if self.include_document_text else {"question": question, "context_blocks": blocks}

    def generation(self, prompt: str, question: str, blocks: int, model: str, adapter: str | None, backend: str) -> Any:
        """The generation observation (a context manager, as `observe`); `backend` names where the answer is
        decoded: `in-process`, or the engine's URL."""
        inputs = self.generation_input(prompt, question, blocks)
        metadata = {"adapter": adapter, "backend": backend}
        return self.observe("generation", "generation", model=model, version=adapter, input=inputs, metadata=metadata)

    def generation_result(
        self,
        checked: CheckedText,
        cited: Sequence[str],
        prompt_tokens: int,
        completion_tokens: int,
        adapter: str | None,
    ) -> dict[str, Any]:
        """What the generation observation is updated with once the citation check has read the text."""
        return {
            "output": self.answer_output(checked.text, checked.refusal, cited),
            "usage_details": {"input": prompt_tokens, "output": completion_tokens},
            "metadata": {
                "adapter": adapter,
                "removed_citations": checked.removed,
                "unsupported_quotes": len(checked.unsupported_quotes),
                "fallback_sentences": len(checked.fallback_sentences),
                "format_valid": checked.format_valid,
            },
        }

    def score_answer(self, recall: RecallCheck | None, checked: CheckedText | None, label: str | None = None) -> None:
        """The recall check and the citation check as scores on the trace: engineers filter on them.
        `checked` is None when nothing was generated: there is no answer to check. `label` is the answer's
        (`assistant.answer_support`): `answer-supported` is 1 only for "supported"."""
        if recall is not None:
            evidence = recall.evidence
            comment = f"threshold {recall.threshold}; similarity {evidence.similarity:.3f}"
            self.score(
                "recall-evidence", round(evidence.score, 4), comment=comment + f", coverage {evidence.coverage:.2f}"
            )
            self.score("recall-answerable", float(recall.answerable), boolean=True)
        if checked is None:
            return
        self.score("format-valid", float(checked.format_valid), boolean=True)
        self.score("cited", float(bool(checked.cited)), boolean=True)
        self.score("model-refused", float(checked.refusal), boolean=True)
        self.score("removed-citations", float(checked.removed))
        if checked.quotes:
            self.score("quotes-verbatim", sum(q.verbatim for q in checked.quotes) / len(checked.quotes))
        if label is not None:
            self.score("answer-supported", float(label == "supported"), comment=label, boolean=True)

    def answer_output(self, text: str, refused: bool, cited: Sequence[str]) -> dict[str, Any]:
        """An answer may quote its sources: its text is document text. A refusal is a fixed sentence."""
        output: dict[str, Any] = {"refused": refused, "cited": list(cited), "chars": len(text)}
        if refused or self.include_document_text:
            output["answer"] = text
        return output

    def score(self, name: str, value: float, *, comment: str | None = None, boolean: bool = False) -> None:
        """A score on this question's trace (the checks' results); never fails an answer."""
        if self._root is None:
            return
        try:
            self._root.score_trace(
                name=name, value=value, data_type="BOOLEAN" if boolean else "NUMERIC", comment=comment
            )
        except Exception:
            log.warning("Langfuse could not record the %s score", name, exc_info=True)

    # -- closing ------------------------------------------------------------------------------------
    def finish(self, output: dict[str, Any]) -> None:
        self._close(output=output)

    def finish_answer(
        self, text: str, refused: bool, cited: Sequence[str], model: str | None, adapter: str | None
    ) -> None:
        self.finish({**self.answer_output(text, refused, cited), "model": model, "adapter": adapter})

    def fail(self, exc: BaseException) -> None:
        self._close(level="ERROR", status_message=_describe(exc))

    def _close(self, **fields: Any) -> None:
        if self._root is None:
            return
        try:
            self._root.update(**fields)
            self._root.end()
        except Exception:
            log.warning("Langfuse could not close a trace", exc_info=True)


class Tracer:
    """Builds the Langfuse client from settings when tracing is configured; pass `client` to supply one (tests)."""

    def __init__(self, settings: TracingSettings, client: Langfuse | None = None) -> None:
        self.settings = settings
        if client is None and settings.enabled:
            from langfuse import Langfuse

            client = Langfuse(
                public_key=settings.public_key,
                secret_key=settings.secret_key.get_secret_value(),
                base_url=settings.base_url,
                environment=settings.environment,
            )
        self.client = client

    @property
    def enabled(self) -> bool:
        return self.client is not None

    @property
    def include_document_text(self) -> bool:
        return self.settings.include_document_text

    def start_question(self, principal: Principal, question: str, session_id: str | None = None) -> QuestionTrace:
        attributes: dict[str, Any] = {"user_id": principal.user_id, "trace_name": "question"}
        if session_id:
            attributes["session_id"] = session_id
        if self.client is None:
            return QuestionTrace.off()
        from langfuse import propagate_attributes

        try:
            with propagate_attributes(**attributes):
                root = self.client.start_observation(name="question", as_type="span", input={"question": question})
        except Exception:
            log.warning("Langfuse could not start a trace; answering goes on untraced", exc_info=True)
            return QuestionTrace.off()
        return QuestionTrace(root, attributes, self.settings.include_document_text)

    def feedback(self, trace_id: str, helpful: bool, comment: str | None = None) -> None:
        """A user's thumbs up or down on an answer, as a boolean score on its trace."""
        self.score(trace_id, FEEDBACK_SCORE, 1.0 if helpful else 0.0, comment=comment, boolean=True)

    def score(
        self, trace_id: str, name: str, value: float, *, comment: str | None = None, boolean: bool = False
    ) -> None:
        """A score on a trace (feedback, or an evaluation's metric); sent in the background, batched."""
        if self.client is None:
            raise TracingError(
                "tracing is off: set LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY and LANGFUSE_BASE_URL to record scores"
            )
        if not _TRACE_ID.match(trace_id):
            raise TracingError(f"{trace_id!r} is not a trace id (32 lowercase hex characters, as `ask --json` prints)")
        self.client.create_score(
            trace_id=trace_id,
            name=name,
            value=value,
            data_type="BOOLEAN" if boolean else "NUMERIC",
            comment=comment,
        )

    def record(self, name: str, input: Any, output: Any, scores: dict[str, float]) -> str | None:
        """A trace of its own for an event that is not a question (an ingest's impact report), with scores;
        its id, or None when tracing is off."""
        if self.client is None:
            return None
        try:
            root = self.client.start_observation(name=name, as_type="span", input=input)
            root.update(output=output)
            root.end()
            for score, value in scores.items():
                root.score_trace(name=score, value=value, data_type="NUMERIC")
        except Exception:  # what it reports is already saved locally
            log.warning("Langfuse could not record the %s trace", name, exc_info=True)
            return None
        return str(root.trace_id)

    def flush(self) -> None:
        """Send what is buffered now (a CLI process is about to exit)."""
        if self.client is not None:
            self.client.flush()
