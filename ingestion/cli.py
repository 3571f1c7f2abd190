"""`assistant ingest SOURCE`: sync a folder or a BEIR corpus.jsonl into a collection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from assistant.cli_options import JsonFileOption, QuietOption
from assistant.cli_progress import terminal_progress
from assistant.components import open_components
from assistant.identity import cli_operator, parse_groups
from assistant.settings import load_settings
from ingestion.priority import lower_this_process
from ingestion.run import SyncWatchers, run_ingest


def ingest(
    source: Annotated[Path, typer.Argument(help="Corpus folder (with access.yaml) or a BEIR corpus.jsonl.")],
    collection: Annotated[str | None, typer.Option(help="Collection to sync into [default: store.collection].")] = None,
    groups: Annotated[
        str | None, typer.Option(help="Give every document to these groups (G1,G2) instead of an access.yaml.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would change; change nothing.")] = False,
    strict: Annotated[
        bool | None,
        typer.Option(
            "--strict/--no-strict",
            help="Sync nothing while an access rule decides no document or a document would gain readers "
            "[default: ingest.strict; on in the server profile].",
        ),
    ] = None,
    accept_widening: Annotated[
        bool,
        typer.Option(
            "--accept-widening",
            help="Under --strict, apply the listed widenings (documents gaining readers); recorded with who ran it.",
        ),
    ] = False,
    fail_on_warnings: Annotated[
        bool,
        typer.Option(
            "--fail-on-warnings",
            help="Exit 1 when the sync reports any access-rule warning (rules deciding nothing, patterns matching "
            "deeper than meant, widenings); the sync is applied all the same. For scheduled syncs.",
        ),
    ] = False,
    rebind: Annotated[
        bool,
        typer.Option(
            "--rebind",
            help="The collection's corpus moved to SOURCE: sync it from there from now on (refused when SOURCE holds "
            "fewer than half of its documents).",
        ),
    ] = False,
    json_out: JsonFileOption = None,
    quiet: QuietOption = False,
) -> None:
    """Sync SOURCE into the index: embed added and changed documents, delete removed ones, re-group moved ones.

    Exit code 1 when any document failed; everything else is still synced and nothing already indexed is lost.
    When the sync touched documents of the golden set (review.golden), the impact report follows the summary.
    """
    console = Console()
    group_list = parse_groups(groups) if groups is not None else None
    settings = load_settings()
    if strict is not None:
        settings.ingest.strict = strict
    lower_this_process(settings.ingest.nice)  # beside a running app, its answers come first
    watchers = SyncWatchers.installed(settings, collection)
    with open_components(settings) as components:
        with terminal_progress(console, quiet=quiet) as progress:
            summary = run_ingest(
                components,
                source,
                collection,
                group_list,
                dry_run=dry_run,
                progress=progress,
                watcher=watchers,
                rebind=rebind,
                accept_widening=accept_widening,
                started_by=cli_operator(),
            )
        if json_out is not None:  # written first: nothing printed below can lose the record of a committed sync
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(summary.to_json(), indent=2) + "\n", encoding="utf-8")
        summary.render(console)
        watchers.finish(components, console)
        if json_out is not None and watchers.to_json():  # then what the watchers found (superseded adapters)
            body = summary.to_json() | watchers.to_json()
            json_out.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    if not summary.ok or (fail_on_warnings and summary.warnings):
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.command()(ingest)
