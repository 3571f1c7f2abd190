"""`assistant ask QUESTION (--user NAME | --groups G1,G2)`: a cited answer, streamed, then its sources and what
is not verified. The answer and the sources are document text: printed literally, never as Rich markup."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from assistant.access import Principal
from assistant.answering import Answer, Answerer
from assistant.cli_options import CollectionOption, GroupsOption, UserOption
from assistant.components import open_components
from assistant.identity import resolve_principal
from assistant.settings import load_settings
from assistant.terminal import shown, visible_lines


def ask(
    question: Annotated[str, typer.Argument(help="The question, in plain words.")],
    user: UserOption = None,
    groups: GroupsOption = None,
    collection: CollectionOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of streaming.")] = False,
) -> None:
    """Answer from the documents the user may read, citing them as [n]; refuse when none supports an answer."""
    settings = load_settings()
    principal = resolve_principal(settings, user, groups)
    with open_components(settings) as components:
        answer_and_print(components.answerer(collection, principal=principal), principal, question, as_json)


def answer_and_print(answerer: Answerer, principal: Principal, question: str, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(to_json(answerer.ask(principal, question)), indent=2))
        return
    console = Console(highlight=False)
    with answerer.stream(principal, question) as stream:
        for piece in stream:
            console.print(visible_lines(piece), end="", soft_wrap=True, markup=False)
        final = stream.answer
    console.print()
    render_sources(final, console)
    if final.trace_id:
        console.print(f"[dim]trace {final.trace_id}: `assistant feedback {final.trace_id} good|bad`[/dim]")


def to_json(answer: Answer) -> dict[str, object]:
    return {
        "answer": answer.answer,
        "refused": answer.refused,
        "outcome": answer.outcome,
        "citations": [{"n": c.n, "doc_id": c.doc_id, "title": c.title, "path": c.path} for c in answer.citations],
        "retrieved": [
            {"doc_id": c.doc_id, "chunk_id": c.chunk_id, "score": c.score, "title": c.title, "section": c.section}
            for c in answer.retrieved
        ],
        "model": answer.model,
        "adapter": answer.adapter,
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "seconds": round(answer.seconds, 3),
        "removed_citations": answer.removed_citations,
        "label": answer.label,  # supported | quoted | unsupported; null: refused (assistant/answer_support.py)
        "unsupported_specifics": answer.support.missing if answer.support is not None else [],
        "answer_score": answer.support.answer_score if answer.support is not None else None,  # the verifier's
        "quotes": [{"block": q.block, "text": q.text, "verified": q.verified} for q in answer.quotes],
        "unsupported_quotes": answer.unsupported_quotes,
        "fallback_sentences": answer.fallback_sentences,
        "trace_id": answer.trace_id,
    }


def render_sources(answer: Answer, console: Console) -> None:
    if answer.refused:
        return
    if answer.support is not None:
        colour = "green" if answer.support.label == "supported" else "yellow"
        console.print(f"[{colour}]{shown(answer.support.text)}[/{colour}]")
        if answer.support.missing:
            console.print(f"[yellow]not verified: {shown(', '.join(answer.support.missing))}[/yellow]")
    for c in answer.citations:
        where = f" > {c.section}" if c.section else ""
        console.print(shown(f"[{c.n}] {c.title}{where} ({c.path})"))
    for sentence in answer.fallback_sentences:
        console.print(f"[yellow]not verified: {shown(sentence)}[/yellow] (no source it cites holds it)")
    for quote in answer.unsupported_quotes:
        console.print(f'[yellow]not verified: "{shown(quote)}"[/yellow] (not found in its source)')
    if answer.removed_citations:
        console.print(f"[dim]{answer.removed_citations} citation(s) to no retrieved block were removed[/dim]")


def register(app: typer.Typer) -> None:
    app.command()(ask)
