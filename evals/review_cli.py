"""`assistant review (--user NAME | --groups G1,G2)`: the week's refused questions, low-evidence answers and
thumbs-down, grouped, as this reviewer may see them (`evals.redaction`), and the commands that turn a group into a
golden question, a training item or a corpus gap (see `evals.review`). The reviewer's name goes into provenance."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from assistant.access import Principal
from assistant.cli_options import JsonFileOption
from assistant.components import Components, open_components
from assistant.identity import resolve_principal
from assistant.recipe import load_recipe
from assistant.settings import load_settings
from assistant.terminal import visible
from evals import review
from evals.redaction import REDACTED
from evals.review import TrainingRules

review_app = typer.Typer(
    help="Review refused, low-evidence and thumbs-down questions; accept them as golden, training or gap items.",
    invoke_without_command=True,
)
GroupArgument = Annotated[str, typer.Argument(help="The group's id, as `assistant review` lists it.")]
UserOption = Annotated[str | None, typer.Option(help="Review as this user of the dev users file.")]
GroupsOption = Annotated[str | None, typer.Option(help="Review as a user in these groups (G1,G2).")]
DaysOption = Annotated[float, typer.Option(help="Look this many days back.")]


@contextmanager
def open_group(
    group_id: str, days: float, user: str | None, groups: str | None
) -> Iterator[tuple[Components, review.ReviewFiles, review.ReviewGroup, Principal]]:
    """The runtime, where decisions go, the open review group a decision is about, and who decides (who must be
    allowed to see the group in full)."""
    settings = load_settings()
    reviewer = resolve_principal(settings, user, groups)
    with open_components(settings) as components:
        group = review.find_group(components, group_id, days, reviewer)
        yield components, review.files_of(settings), group, reviewer


def reasons_line(reasons: dict[str, int]) -> str:
    return ", ".join(f"{reason} x{count}" for reason, count in reasons.items())


@review_app.callback()
def show(
    ctx: typer.Context,
    user: UserOption = None,
    groups: GroupsOption = None,
    days: DaysOption = 7.0,
    json_out: JsonFileOption = None,
) -> None:
    """List the open review groups: reasons, how often asked, and what retrieval found (no document text); askers
    only as pseudonyms in --json, never their groups. A group that retrieved documents outside the reviewer's
    groups, or was asked by someone with groups the reviewer does not hold, is listed redacted: its id, counts and
    reasons."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings()
    reviewer = resolve_principal(settings, user, groups)
    with open_components(settings) as components:
        queue = review.open_queue(components, days, reviewer)
    console = Console()
    listed = len(queue.groups) + len(queue.redacted)
    table = Table(title=f"review queue: {listed} groups from the last {days:g} days ({len(queue.redacted)} redacted)")
    for column in ("id", "question", "asked", "why", "retrieved"):
        table.add_column(column)
    for group in queue.groups:  # user and document text: plain Text, never Rich markup
        found = ", ".join(d["doc_id"] for d in group.documents[:3])
        table.add_row(
            group.id,
            Text(visible(group.question[:80])),
            str(len(group.items)),
            reasons_line(group.reasons),
            Text(visible(found)),
        )
    for hidden in queue.redacted:
        table.add_row(hidden.id, Text(REDACTED), str(hidden.asked), reasons_line(hidden.reasons), hidden.why)
    console.print(table)
    if json_out is not None:
        json_out.write_text(review.dumps(queue) + "\n", encoding="utf-8")


@review_app.command("golden")
def golden(
    group_id: GroupArgument,
    doc: Annotated[str, typer.Option(help="The id of the document that should answer it.")],
    answer: Annotated[str | None, typer.Option(help="A reference answer, for answer evaluation.")] = None,
    collection: Annotated[str | None, typer.Option(help="[default: store.collection]")] = None,
    user: UserOption = None,
    groups: GroupsOption = None,
    days: DaysOption = 7.0,
) -> None:
    """Append the group's question to the golden set (review.golden), expecting DOC."""
    with open_group(group_id, days, user, groups) as (components, files, group, reviewer):
        doc_groups, _ = review.indexed_document(components, collection, doc, reviewer)
        review.accept_golden(files, group, doc, doc_groups, reviewer.user_id, answer)
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
    user: UserOption = None,
    groups: GroupsOption = None,
    days: DaysOption = 7.0,
) -> None:
    """Append the group's question to the curated training items (review.training_items), after the tuning
    data rules: no held-out question, no near-duplicate, verbatim quotes, a document within the allow-list."""
    allowed = load_recipe(recipe).data.allowed_groups
    with open_group(group_id, days, user, groups) as (components, files, group, reviewer):
        doc_groups, text = review.indexed_document(components, collection, doc, reviewer) if doc else (None, "")
        review.accept_training(
            files,
            group,
            TrainingRules.for_repo(components.settings.repo_dir, allowed),
            reviewer.user_id,
            doc_id=doc,
            doc_groups=doc_groups,
            doc_text=text,
            answer=answer,
            quotes=quote or [],
        )
    typer.echo(f"added to {files.training_items}: {group.question!r}")


@review_app.command("gap")
def gap(
    group_id: GroupArgument,
    note: Annotated[str | None, typer.Option(help="What the corpus owner should add.")] = None,
    user: UserOption = None,
    groups: GroupsOption = None,
    days: DaysOption = 7.0,
) -> None:
    """Record the group as a corpus gap: no document answers it (the corpus page lists gaps)."""
    with open_group(group_id, days, user, groups) as (_, files, group, reviewer):
        review.record_gap(files, group, reviewer.user_id, note)
    typer.echo(f"corpus gap recorded: {group.question!r}")


@review_app.command("dismiss")
def dismiss(
    group_id: GroupArgument, user: UserOption = None, groups: GroupsOption = None, days: DaysOption = 7.0
) -> None:
    """Take the group off the queue without adding it anywhere."""
    with open_group(group_id, days, user, groups) as (_, files, group, reviewer):
        review.dismiss(files, group, reviewer.user_id)
    typer.echo(f"dismissed: {group.question!r}")


def register(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")
