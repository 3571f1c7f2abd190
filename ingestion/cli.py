"""`assistant ingest SOURCE`: sync a folder or a BEIR corpus.jsonl into a collection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from assistant.embedder import Embedder
from assistant.errors import AccessPolicyError
from assistant.settings import Settings, load_settings
from assistant.store import build_store
from ingestion.access_policy import AccessPolicy
from ingestion.sources import SourceFailure, open_source
from ingestion.state import SyncState
from ingestion.summary import SyncSummary
from ingestion.sync import Ingestor


def run_ingest(
    settings: Settings, source_path: Path, collection: str, groups: list[str] | None, *, dry_run: bool, progress: bool
) -> SyncSummary:
    """Open the source, the store and the state, sync, and close them again (the store lock included).

    An invalid access policy syncs nothing: dropping one bad rule could let an earlier, broader rule apply.
    """
    policy = AccessPolicy.grant_all(groups) if groups else None
    try:
        source = open_source(source_path, policy, settings.ingest.extensions, settings.ingest.max_file_bytes)
    except AccessPolicyError as exc:
        where = f"line {exc.line}: " if exc.line is not None else ""
        error = f"{where}{exc.reason}; nothing was synced, the index keeps serving its previous state"
        failure = SourceFailure(Path(exc.path).name, error)
        return SyncSummary(collection, str(source_path.resolve()), dry_run, failed=[failure])
    state = SyncState(settings.state_path)
    store = build_store(settings)
    try:
        return Ingestor(settings, store, Embedder(settings.embedder), state).sync(
            source, collection, dry_run=dry_run, progress=progress
        )
    finally:
        store.close()
        state.close()


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
