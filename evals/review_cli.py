"""`assistant review`: the week's refused questions, low-evidence answers and thumbs-down, grouped, and the
commands that turn a group into a golden question, a training item or a corpus gap (see `evals.review`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from assistant.cli_options import JsonFileOption
from assistant.components import Components, open_components
from assistant.settings import load_settings
from evals import review
from evals.review import TrainingRules

review_app = typer.Typer(
    help="Review refused, low-evidence and thumbs-down questions; accept them as golden, training or gap items.",
    invoke_without_command=True,
)
GroupArgument = Annotated[str, typer.Argument(help="The group's id, as `assistant review` lists it.")]
ReviewerOption = Annotated[str, typer.Option(help="Who decides (recorded in the item's provenance).")]
DaysOption = Annotated[float, typer.Option(help="Look this many days back.")]


@contextmanager
def open_group(group_id: str, days: float) -> Iterator[tuple[Components, review.ReviewFiles, review.ReviewGroup]]:
    """The runtime, where decisions go, and the open review group a decision is about."""
    with open_components(load_settings()) as components:
        yield components, review.files_of(components.settings), review.find_group(components, group_id, days)


@review_app.callback()
def show(
    ctx: typer.Context,
    days: DaysOption = 7.0,
    json_out: JsonFileOption = None,
) -> None:
    """List the open review groups: reasons, how often asked, and what retrieval found (no document text)."""
    if ctx.invoked_subcommand is not None:
        return
    with open_components(load_settings()) as components:
        groups = review.open_queue(components, days)
    console = Console()
    table = Table(title=f"review queue: {len(groups)} groups from the last {days:g} days")
    for column in ("id", "question", "asked", "why", "retrieved"):
        table.add_column(column)
    for group in groups:
        why = ", ".join(f"{reason} x{count}" for reason, count in group.reasons.items())
        found = ", ".join(d["doc_id"] for d in group.documents[:3])
        table.add_row(group.id, group.question[:80], str(len(group.items)), why, found)
    console.print(table)
    if json_out is not None:
        json_out.write_text(review.dumps(groups) + "\n", encoding="utf-8")


@review_app.command("golden")
def golden(
    group_id: GroupArgument,
    doc: Annotated[str, typer.Option(help="The id of the document that should answer it.")],
    answer: Annotated[str | None, typer.Option(help="A reference answer, for answer evaluation.")] = None,
    collection: Annotated[str | None, typer.Option(help="[default: store.collection]")] = None,
    reviewer: ReviewerOption = "reviewer",
    days: DaysOption = 7.0,
) -> None:
    """Append the group's question to the golden set (review.golden), expecting DOC."""
    with open_group(group_id, days) as (components, files, group):
        groups, _ = review.indexed_document(components, collection, doc)
        review.accept_golden(files, group, doc, groups, reviewer, answer)
    typer.echo(f"added to {files.golden}: {group.question!r} -> {doc}")


@review_app.command("train")
def train(
    group_id: GroupArgument,
    doc: Annotated[str | None, typer.Option(help="The document that answers it; none: it is unanswerable.")] = None,
    answer: Annotated[str, typer.Option(help="The reference answer, in plain words.")] = "",
    quote: Annotated[list[str] | None, typer.Option(help="A sentence of DOC, verbatim (repeatable).")] = None,
    recipe: Annotated[Path, typer.Option(help="The recipe whose allow-list applies.")] = Path(
        "tuning/recipes/handbook-cpu.yaml"
    ),
    collection: Annotated[str | None, typer.Option(help="[default: store.collection]")] = None,
    reviewer: ReviewerOption = "reviewer",
    days: DaysOption = 7.0,
) -> None:
    """Append the group's question to the curated training items (review.training_items), after the tuning
    data rules: no held-out question, no near-duplicate, verbatim quotes, a document within the allow-list."""
    from tuning.recipe import load_recipe

    allowed = load_recipe(recipe).data.allowed_groups
    with open_group(group_id, days) as (components, files, group):
        groups, text = review.indexed_document(components, collection, doc) if doc else (None, "")
        review.accept_training(
            files,
            group,
            TrainingRules.for_repo(Path.cwd(), allowed),
            reviewer,
            doc_id=doc,
            doc_groups=groups,
            doc_text=text,
            answer=answer,
            quotes=quote or [],
        )
    typer.echo(f"added to {files.training_items}: {group.question!r}")


@review_app.command("gap")
def gap(
    group_id: GroupArgument,
    note: Annotated[str | None, typer.Option(help="What the corpus owner should add.")] = None,
    reviewer: ReviewerOption = "reviewer",
    days: DaysOption = 7.0,
) -> None:
    """Record the group as a corpus gap: no document answers it (the corpus page lists gaps)."""
    with open_group(group_id, days) as (_, files, group):
        review.record_gap(files, group, reviewer, note)
    typer.echo(f"corpus gap recorded: {group.question!r}")


@review_app.command("dismiss")
def dismiss(group_id: GroupArgument, reviewer: ReviewerOption = "reviewer", days: DaysOption = 7.0) -> None:
    """Take the group off the queue without adding it anywhere."""
    with open_group(group_id, days) as (_, files, group):
        review.dismiss(files, group, reviewer)
    typer.echo(f"dismissed: {group.question!r}")


def register(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")
