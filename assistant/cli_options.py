"""Typer option types shared by the command modules, so a flag reads the same in every command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assistant.settings import RetrievalMode

UserOption = Annotated[str | None, typer.Option(help="Ask as this user of the dev users file.")]
GroupsOption = Annotated[str | None, typer.Option(help="Ask as a user in these groups (G1,G2).")]
CollectionOption = Annotated[str | None, typer.Option(help="Collection [default: store.collection].")]
ModeOption = Annotated[RetrievalMode | None, typer.Option(help="Which retrievers run [default: retrieval.mode].")]
JsonFileOption = Annotated[Path | None, typer.Option("--json", help="Also write the result as JSON to this file.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
