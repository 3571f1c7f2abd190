"""Users' verdicts on answers: appended to `feedback.jsonl` in the data directory, and sent to Langfuse as a
score on the answer's trace when tracing is on. The local file keeps every verdict without a Langfuse server
(`read_feedback`), for the reviews that turn them into golden and training items.

Every surface records through `record_feedback`: the chat page from the answer it shows, `assistant feedback`
from the question log's entry for the trace (`feedback_on`), so both reach the review queue."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from assistant.jsonl import append_record, read_records
from assistant.question_log import LoggedQuestion
from assistant.tracing import Tracer


@dataclass(frozen=True)
class Feedback:
    user_id: str
    question: str
    helpful: bool
    comment: str | None
    trace_id: str | None
    model: str | None
    adapter: str | None
    cited: list[str]  # doc ids the answer cited
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))


def feedback_path(data_dir: Path) -> Path:
    return data_dir / "feedback.jsonl"


def record_feedback(data_dir: Path, tracer: Tracer, feedback: Feedback) -> bool:
    """Store `feedback`; True when it also went to Langfuse."""
    append_record(feedback_path(data_dir), asdict(feedback))
    if tracer.enabled and feedback.trace_id:
        tracer.feedback(feedback.trace_id, feedback.helpful, feedback.comment)
        return True
    return False


def feedback_on(entry: LoggedQuestion, helpful: bool, comment: str | None) -> Feedback:
    """The verdict of the logged question's asker on its answer (the command line knows the answer only by its
    trace; the log knows who asked what, and what was cited). The log does not keep the model's name."""
    return Feedback(
        user_id=entry.user_id,
        question=entry.question,
        helpful=helpful,
        comment=comment,
        trace_id=entry.trace_id,
        model=None,
        adapter=entry.adapter,
        cited=list(entry.cited),
    )


def read_feedback(data_dir: Path) -> list[Feedback]:
    return [Feedback(**record) for record in read_records(feedback_path(data_dir))]
