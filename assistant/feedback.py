"""Users' verdicts on answers: appended to `feedback.jsonl` in the data directory, and sent to Langfuse as a
score on the answer's trace when tracing is on. The local file keeps every verdict without a Langfuse server
(`read_feedback`), for the reviews that turn them into golden and training items."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from assistant.jsonl import append_record, read_records
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


def read_feedback(data_dir: Path) -> list[Feedback]:
    return [Feedback(**record) for record in read_records(feedback_path(data_dir))]
