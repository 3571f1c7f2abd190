"""`assistant search QUESTION (--user NAME | --groups G1,G2)`: the ranked chunks a user may read."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from assistant.cli_options import CollectionOption, GroupsOption, ModeOption, UserOption
from assistant.components import open_components
from assistant.identity import resolve_principal
from assistant.recall_gate import RecallCheck
from assistant.retriever import Retrieval
from assistant.settings import load_settings
from assistant.terminal import visible


def search(
    question: Annotated[str, typer.Argument(help="The question, in plain words.")],
    user: UserOption = None,
    groups: GroupsOption = None,
    top_k: Annotated[int | None, typer.Option("--top-k", min=1, help="Results [default: retrieval.top_k].")] = None,
    mode: ModeOption = None,
    collection: CollectionOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Search the index as a user: only chunks of documents their groups may read, best first."""
    settings = load_settings()
    principal = resolve_principal(settings, user, groups)
    with open_components(settings) as components:
        result = components.retriever(collection).search(principal, question, top_k=top_k, mode=mode)
        check = components.recall_gate.check(result)
    if as_json:
        typer.echo(json.dumps(to_json(result, check), indent=2))
    else:
        render(result, check, Console())


def to_json(result: Retrieval, check: RecallCheck) -> dict[str, object]:
    return {
        "results": [
            {"doc_id": c.doc_id, "chunk_id": c.chunk_id, "score": c.score, "groups": list(c.groups), "title": c.title}
            for c in result.chunks
        ],
        "answerable": check.answerable,
        "evidence": {
            "similarity": check.evidence.similarity,
            "coverage": check.evidence.coverage,
            "score": check.evidence.score,
        },
    }


COLUMNS = ("#", "score", "doc id", "title", "section", "groups")


def render(result: Retrieval, check: RecallCheck, console: Console) -> None:
    """A table on a terminal; plain tab-separated rows otherwise (a pipe or a file has no width to fit: ids and
    titles are never cut there, and each row stays on one line for `grep` and `cut`)."""
    groups = ", ".join(sorted(result.principal.groups)) or "no groups"
    heading = visible(f"{result.question!r} as {result.principal.user_id} ({groups})")
    # Ids, titles and sections come from documents: control characters shown as escapes, never obeyed.
    rows = [
        [
            visible(cell)
            for cell in (str(c.rank), f"{c.score:.4f}", c.doc_id, c.title, c.section or "", ", ".join(c.groups))
        ]
        for c in result.chunks
    ]
    if console.is_terminal:
        # Questions, ids, titles and sections are data, not markup: "Budget [/2026]" must print as written.
        table = Table(title=escape(heading))
        for column in COLUMNS:
            # A narrow terminal folds long ids and titles onto more lines rather than cutting them.
            table.add_column(column, overflow="fold", no_wrap=column in ("#", "score"))
        for row in rows:
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)
    else:
        console.file.write(heading + "\n")  # not console.print: Rich would expand the tabs into spaces
        for line in (COLUMNS, *rows):
            console.file.write("\t".join(line) + "\n")  # a tab inside a cell is already shown as \t
    verdict = "answerable" if check.answerable else "no approved source: the assistant would refuse"
    e = check.evidence
    console.print(
        f"recall check: {verdict} (evidence {e.score:.3f}: similarity {e.similarity:.3f}, "
        f"term coverage {e.coverage:.2f})",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.command()(search)
