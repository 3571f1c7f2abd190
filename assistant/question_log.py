"""The question log: one line per question the assistant was asked outside evaluations, in `questions.jsonl` in
the data directory, for the weekly review (`evals.review`): what was asked, by which groups, what retrieval found
(document ids, titles and groups, never their text), the recall check's evidence and decision, and what the
citation check made of the answer.

It holds what a Langfuse trace always holds and nothing more (see `assistant.tracing`): question text and
document metadata, no document text. An answer's text is document text, so only its outcome is logged.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from assistant.jsonl import append_record, read_records

Outcome = Literal[
    "answered", "refused-recall", "refused-evidence", "refused-model", "refused-adapter", "refused-engine"
]


@dataclass(frozen=True)
class LoggedQuestion:
    user_id: str
    groups: list[str]
    question: str
    collection: str
    outcome: Outcome
    evidence: float | None  # the recall check's evidence score, and the threshold it was held to
    threshold: float | None
    retrieved: list[dict[str, Any]]  # rank, doc_id, title, groups, score
    cited: list[str]
    format_valid: bool
    quotes: int
    quotes_verbatim: int
    removed_citations: int
    trace_id: str | None
    adapter: str | None
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))
    label: str | None = None  # the answer's label (`assistant.answer_support`); None: refused, or logged before it
    mended: bool = False  # the line shown was the source's sentence: the model's own line did not check out
    seconds: float | None = None  # question to checked answer, as the user waited (None: logged before it)

    @property
    def refused(self) -> bool:
        return self.outcome != "answered"


class QuestionLog:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "questions.jsonl"

    def record(self, entry: LoggedQuestion) -> None:
        append_record(self.path, asdict(entry))

    def read(self, since: str | None = None) -> list[LoggedQuestion]:
        """Entries created at or after `since` (an ISO timestamp), oldest first."""
        entries = [LoggedQuestion(**r) for r in read_records(self.path)]
        return [e for e in entries if since is None or e.created >= since]
