"""`assistant search QUESTION (--user NAME | --groups G1,G2)`: the ranked chunks a user may read."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from assistant.access import Principal
from assistant.errors import IdentityError
from assistant.identity import dev_principal
from assistant.retriever import Retrieval, build_retriever
from assistant.settings import Settings, load_settings
from assistant.store import build_store

# Options shared by the commands that ask as someone (search, ask) and that read a collection.
UserOption = Annotated[str | None, typer.Option(help="Ask as this user of the dev users file.")]
GroupsOption = Annotated[str | None, typer.Option(help="Ask as a user in these groups (G1,G2).")]
CollectionOption = Annotated[str | None, typer.Option(help="Collection [default: store.collection].")]


def resolve_principal(settings: Settings, user: str | None, groups: str | None) -> Principal:
    """Exactly one of --user (dev users file) or --groups; there is no search without a principal."""
    if (user is None) == (groups is None):
        raise IdentityError("say who is asking: --user NAME (dev users file) or --groups G1,G2")
    if not settings.identity.allow_dev_users:
        raise IdentityError("this profile takes identities from SSO only; --user and --groups are for development")
    if user is not None:
        return dev_principal(settings.identity, user)
    assert groups is not None
    return Principal.of("cli", [g.strip() for g in groups.split(",") if g.strip()])


def search(
    question: Annotated[str, typer.Argument(help="The question, in plain words.")],
    user: UserOption = None,
    groups: GroupsOption = None,
    top_k: Annotated[int | None, typer.Option("--top-k", min=1, help="Results [default: retrieval.top_k].")] = None,
    mode: Annotated[str | None, typer.Option(help="hybrid, dense or bm25 [default: retrieval.mode].")] = None,
    collection: CollectionOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Search the index as a user: only chunks of documents their groups may read, best first."""
    settings = load_settings()
    principal = resolve_principal(settings, user, groups)
    if mode is not None and mode not in ("hybrid", "dense", "bm25"):
        raise typer.BadParameter("mode must be hybrid, dense or bm25", param_hint="--mode")
    store = build_store(settings)
    try:
        result = build_retriever(settings, store, collection).search(
            principal,
            question,
            top_k=top_k,
            mode=mode,  # type: ignore[arg-type]
        )
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(to_json(result), indent=2))
    else:
        render(result, Console())


def to_json(result: Retrieval) -> dict[str, object]:
    return {
        "results": [
            {"doc_id": c.doc_id, "chunk_id": c.chunk_id, "score": c.score, "groups": list(c.groups), "title": c.title}
            for c in result.chunks
        ],
        "answerable": result.answerable,
        "evidence": {
            "similarity": result.evidence.similarity,
            "coverage": result.evidence.coverage,
            "score": result.evidence.score,
        },
    }


def render(result: Retrieval, console: Console) -> None:
    groups = ", ".join(sorted(result.principal.groups)) or "no groups"
    table = Table(title=f"{result.question!r} as {result.principal.user_id} ({groups})")
    for column in ("#", "score", "doc id", "title", "section", "groups"):
        table.add_column(column)
    for c in result.chunks:
        table.add_row(str(c.rank), f"{c.score:.4f}", c.doc_id, c.title, c.section or "", ", ".join(c.groups))
    console.print(table)
    verdict = "answerable" if result.answerable else "no approved source: the assistant would refuse"
    e = result.evidence
    console.print(
        f"recall check: {verdict} (evidence {e.score:.3f}: similarity {e.similarity:.3f}, "
        f"term coverage {e.coverage:.2f})"
    )


def register(app: typer.Typer) -> None:
    app.command()(search)
