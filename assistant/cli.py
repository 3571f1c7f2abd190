"""The `assistant` command. Sub-commands come from the packages that own them (entry-point group
`assistant.commands`, declared in pyproject.toml), so this core package never imports its consumers.

Errors are translated here, once: a domain error becomes one red line on stderr and exit code 1; a usage
error exits 2.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import typer
from rich.console import Console
from rich.markup import escape

from assistant.errors import AssistantError

COMMAND_GROUP = "assistant.commands"


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="assistant",
        help="Company assistant: ingest documents, search and ask with access control, tune, evaluate, serve the app.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,  # help texts contain [n] and [default: ...], not markup
    )

    @app.callback()
    def _root() -> None:
        """Settings: ASSISTANT_PROFILE (default, server, test), ASSISTANT_DATA_DIR, ASSISTANT_<SECTION>__<FIELD>."""

    for entry in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        entry.load()(app)
    return app


def main(argv: list[str] | None = None) -> None:
    """Typer handles usage errors (exit 2) and `typer.Exit`; domain errors surface here as one line, exit 1."""
    try:
        build_app()(args=argv)
    except AssistantError as exc:
        # Messages quote file names, groups and document text: escaped, so "[everyone]" prints as written.
        Console(stderr=True, highlight=False).print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
