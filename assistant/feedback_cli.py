"""`assistant feedback TRACE_ID good|bad [--comment]`: a user's verdict on an answer, as a score on its trace."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from assistant.components import open_components
from assistant.settings import load_settings


class Verdict(StrEnum):
    good = "good"
    bad = "bad"


def feedback(
    trace_id: Annotated[str, typer.Argument(help="The answer's trace id (`ask` prints it; `--json` key trace_id).")],
    verdict: Annotated[Verdict, typer.Argument(help="Was the answer helpful?")],
    comment: Annotated[str | None, typer.Option(help="What was wrong or right, in a sentence.")] = None,
) -> None:
    """Record a user's verdict on an answer as a score on its Langfuse trace."""
    with open_components(load_settings()) as components:  # opens no index and loads no model: tracing only
        components.tracer.feedback(trace_id, verdict is Verdict.good, comment)
    typer.echo(f"recorded {verdict.value} on trace {trace_id}")


def register(app: typer.Typer) -> None:
    app.command()(feedback)
