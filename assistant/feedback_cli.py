"""`assistant feedback TRACE_ID good|bad [--comment]`: a user's verdict on an answer, recorded as the chat page
records it (`assistant.feedback.record_feedback`): in `feedback.jsonl`, hence the review queue, and as a score on
its Langfuse trace when tracing is on. The answer is found by its trace id in the question log; an answer this
data directory never logged (asked elsewhere, or with question logging off) can only be scored in Langfuse."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from assistant.components import open_components
from assistant.errors import TracingError
from assistant.feedback import feedback_on, record_feedback
from assistant.question_log import QuestionLog
from assistant.settings import load_settings


class Verdict(StrEnum):
    good = "good"
    bad = "bad"


def feedback(
    trace_id: Annotated[str, typer.Argument(help="The answer's trace id (`ask` prints it; `--json` key trace_id).")],
    verdict: Annotated[Verdict, typer.Argument(help="Was the answer helpful?")],
    comment: Annotated[str | None, typer.Option(help="What was wrong or right, in a sentence.")] = None,
) -> None:
    """Record a user's verdict on an answer, for the review queue and as a score on its Langfuse trace."""
    settings = load_settings()
    helpful = verdict is Verdict.good
    logged = [q for q in QuestionLog(settings.data_dir).read() if q.trace_id == trace_id]
    with open_components(settings) as components:  # opens no index and loads no model
        if not logged:
            if not components.tracer.enabled:
                raise TracingError(
                    f"trace {trace_id} is not in the question log and tracing is off: "
                    "nothing to record the verdict on (set LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY and "
                    "LANGFUSE_BASE_URL to score it in Langfuse)"
                )
            components.tracer.feedback(trace_id, helpful, comment)
            typer.echo(f"recorded {verdict.value} on trace {trace_id} (Langfuse only: not in this question log)")
            return
        sent = record_feedback(settings.data_dir, components.tracer, feedback_on(logged[-1], helpful, comment))
    where = "feedback.jsonl and Langfuse" if sent else "feedback.jsonl (tracing is off)"
    typer.echo(f"recorded {verdict.value} on trace {trace_id} in {where}")


def register(app: typer.Typer) -> None:
    app.command()(feedback)
