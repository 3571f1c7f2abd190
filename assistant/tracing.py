"""Langfuse tracing: one trace per question, with observations for retrieval, the recall check and generation,
and user feedback as a score on that trace.

With no Langfuse keys configured nothing is constructed and nothing is sent: every call below is a no-op, so the
answer pipeline never branches on whether tracing is on. What leaves the process is decided here, in one place:
the principal's user id and groups, the question, document ids, titles and scores, the recall-check evidence,
token counts and the answer. Retrieved chunk text and the full prompt (which contains it) are sent only with
`tracing.include_chunk_text`, because people who read traces may not be in the documents' groups.

Observations are started explicitly (never attached as the current OpenTelemetry context), so a trace can stay
open across the `yield`s of a streaming answer without leaking context into the consumer's thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Literal

from assistant.access import Principal
from assistant.errors import TracingError
from assistant.settings import TracingSettings

if TYPE_CHECKING:
    from langfuse import Langfuse

    from assistant.retriever import Retrieval

FEEDBACK_SCORE = "user-feedback"
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
ObservationType = Literal["span", "retriever", "guardrail", "generation"]


class _Unrecorded:
    """Stands in for an observation when tracing is off."""

    def update(self, **_: Any) -> None:
        return None


class QuestionTrace:
    """The trace of one question. Close it with `finish` (the answer) or `fail` (an error)."""

    def __init__(self, root: Any | None, attributes: dict[str, Any], include_chunk_text: bool) -> None:
        self._root = root
        self._attributes = attributes
        self.include_chunk_text = include_chunk_text

    @property
    def trace_id(self) -> str | None:
        return str(self._root.trace_id) if self._root is not None else None

    @contextmanager
    def observe(self, name: str, as_type: ObservationType, **fields: Any) -> Iterator[Any]:
        """A child observation lasting as long as the block; an exception marks it as an error."""
        if self._root is None:
            yield _Unrecorded()
            return
        from langfuse import propagate_attributes

        with propagate_attributes(**self._attributes):
            child = self._root.start_observation(name=name, as_type=as_type, **fields)
        try:
            yield child
        except BaseException as exc:
            child.update(level="ERROR", status_message=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            child.end()

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
            if self.include_chunk_text:
                item["text"] = chunk.text
            results.append(item)
        return results

    def recall_check(self, retrieval: Retrieval, threshold: float) -> None:
        """The gate's decision is made inside retrieval; it is recorded as its own guardrail observation."""
        evidence = {**asdict(retrieval.evidence), "threshold": threshold}
        with self.observe("recall-check", "guardrail", input=evidence) as check:
            level = "DEFAULT" if retrieval.answerable else "WARNING"  # a refusal stands out in the trace list
            check.update(output={"answerable": retrieval.answerable}, level=level)

    def generation_input(self, prompt: str, question: str, blocks: int) -> Any:
        return prompt if self.include_chunk_text else {"question": question, "context_blocks": blocks}

    def finish(self, output: dict[str, Any]) -> None:
        if self._root is not None:
            self._root.update(output=output)
            self._root.end()

    def fail(self, exc: BaseException) -> None:
        if self._root is not None:
            self._root.update(level="ERROR", status_message=f"{type(exc).__name__}: {exc}")
            self._root.end()


class Tracer:
    """Builds the Langfuse client from settings when both keys are set; pass `client` to supply one (tests)."""

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

    def start_question(self, principal: Principal, question: str, session_id: str | None = None) -> QuestionTrace:
        attributes: dict[str, Any] = {"user_id": principal.user_id, "trace_name": "question"}
        if session_id:
            attributes["session_id"] = session_id
        if self.client is None:
            return QuestionTrace(None, attributes, self.settings.include_chunk_text)
        from langfuse import propagate_attributes

        with propagate_attributes(**attributes):
            root = self.client.start_observation(name="question", as_type="span", input={"question": question})
        return QuestionTrace(root, attributes, self.settings.include_chunk_text)

    def feedback(self, trace_id: str, helpful: bool, comment: str | None = None) -> None:
        """A user's thumbs up or down on an answer, as a boolean score on its trace."""
        self.score(trace_id, FEEDBACK_SCORE, 1.0 if helpful else 0.0, comment=comment, boolean=True)

    def score(
        self, trace_id: str, name: str, value: float, *, comment: str | None = None, boolean: bool = False
    ) -> None:
        """A score on a trace (feedback, or an evaluation's metric); sent in the background, batched."""
        if self.client is None:
            raise TracingError("tracing is off: set LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY to record scores")
        if not _TRACE_ID.match(trace_id):
            raise TracingError(f"{trace_id!r} is not a trace id (32 lowercase hex characters, as `ask --json` prints)")
        self.client.create_score(
            trace_id=trace_id,
            name=name,
            value=value,
            data_type="BOOLEAN" if boolean else "NUMERIC",
            comment=comment,
        )

    def flush(self) -> None:
        """Send what is buffered now (a CLI process is about to exit)."""
        if self.client is not None:
            self.client.flush()
