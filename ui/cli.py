"""`assistant ui`: start the Streamlit app (ui/app.py) on this machine."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from assistant.errors import ConfigError
from assistant.settings import load_settings
from ui.roles import LOOPBACK

APP = Path(__file__).resolve().parent / "app.py"


def ui(
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8501,
    address: Annotated[str, typer.Option(help="Address to bind (0.0.0.0 to serve other machines).")] = "localhost",
    secrets: Annotated[
        Path | None, typer.Option(help="Streamlit secrets TOML with the [auth] OIDC section (ui.auth=oidc).")
    ] = None,
) -> None:
    """Serve the app: chat for everyone, corpus for corpus owners, quality for engineers."""
    settings = load_settings()
    if settings.ui.auth == "dev" and address not in LOOPBACK:
        raise ConfigError(
            f"dev sign-in lets anyone pick any user: serve it on localhost only, or set ui.auth=oidc to bind {address}"
        )
    env = dict(os.environ)
    if secrets is not None:
        env["STREAMLIT_SECRETS_FILES"] = str(secrets.resolve())
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.port", str(port),
        "--server.address", address,
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    typer.echo(f"serving on http://{address}:{port} (Ctrl+C stops)", err=True)
    # Become the server (no child process): a signal to this process, from a terminal or a supervisor, stops it.
    os.execve(sys.executable, command, env)


def register(app: typer.Typer) -> None:
    app.command("ui")(ui)
