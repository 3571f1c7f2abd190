"""`assistant ingest SOURCE`: sync a folder or a BEIR corpus.jsonl into a collection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from assistant.settings import load_settings
from ingestion.run import run_ingest


def ingest(
    source: Annotated[Path, typer.Argument(help="Corpus folder (with access.yaml) or a BEIR corpus.jsonl.")],
    collection: Annotated[str | None, typer.Option(help="Collection to sync into [default: store.collection].")] = None,
    groups: Annotated[
        str | None, typer.Option(help="Give every document to these groups (G1,G2) instead of an access.yaml.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would change; change nothing.")] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the summary as JSON to this file.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Sync SOURCE into the index: embed added and changed documents, delete removed ones, re-group moved ones.

    Exit code 1 when any document failed; everything else is still synced and nothing already indexed is lost.
    """
    settings = load_settings()
    console = Console()
    group_list = [g.strip() for g in groups.split(",") if g.strip()] if groups is not None else None
    summary = run_ingest(
        settings,
        source,
        collection or settings.store.collection,
        group_list,
        dry_run=dry_run,
        progress=not quiet and console.is_terminal,
    )
    summary.render(console)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(summary.to_json(), indent=2) + "\n", encoding="utf-8")
    if not summary.ok:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.command()(ingest)
