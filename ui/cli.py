"""`assistant ui`: start the Streamlit app (ui/app.py) on this machine.

Only the flags a user gives are passed on, so Streamlit's own configuration (`STREAMLIT_SERVER_PORT`,
`.streamlit/config.toml`) still decides the rest. The app's own defaults (headless, no usage statistics, the
toolbar in viewer mode: no "Deploy" button) apply only where that configuration says nothing.

Dev sign-in lets anyone pick any user, so it is served on loopback only: a non-loopback address, given or
configured, is refused here; with none anywhere (Streamlit's default serves every interface) it binds localhost.
The app checks again (`ui.sign_in`), for `streamlit run ui/app.py` started by hand.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from assistant.errors import ConfigError
from assistant.settings import Settings, load_settings
from ui.roles import LOOPBACK

APP = Path(__file__).resolve().parent / "app.py"
# Where Streamlit's configuration is silent, the app runs with these.
DEFAULTS = {
    "server.headless": "true",
    "browser.gatherUsageStats": "false",
    "client.toolbarMode": "viewer",  # no "Deploy" button, no developer menu: users are not the app's developers
}


def configured(key: str) -> Any | None:
    """Streamlit's own setting of option `key` (its environment variable, or a config.toml it reads), or None."""
    from streamlit import config

    option = config.get_config_options(force_reparse=True)[key]
    if option.env_var in os.environ:
        return os.environ[option.env_var]
    return config.get_option(key) if config.is_manually_set(key) else None


def streamlit_flags(settings: Settings, port: int | None, address: str | None) -> list[str]:
    """The `streamlit run` flags: those given, the app's defaults where Streamlit is not configured, and under
    dev sign-in a loopback address."""
    flags: list[str] = []
    if port is not None:
        flags += ["--server.port", str(port)]
    if settings.ui.auth == "dev":
        bound = address if address is not None else configured("server.address")
        if bound is None:
            address = "localhost"
        elif str(bound) not in LOOPBACK:
            raise ConfigError(
                "dev sign-in lets anyone pick any user: serve it on localhost only, "
                f"or set ui.auth=oidc to bind {bound}"
            )
    if address is not None:
        flags += ["--server.address", address]
    for key, value in DEFAULTS.items():
        if configured(key) is None:
            flags += [f"--{key}", value]
    return flags


def ui(
    port: Annotated[int | None, typer.Option(help="Port to serve on [default: Streamlit's, 8501].")] = None,
    address: Annotated[
        str | None,
        typer.Option(help="Address to bind (0.0.0.0 to serve other machines) [default: Streamlit's; dev: localhost]."),
    ] = None,
    secrets: Annotated[
        Path | None, typer.Option(help="Streamlit secrets TOML with the [auth] OIDC section (ui.auth=oidc).")
    ] = None,
) -> None:
    """Serve the app: chat for everyone, corpus for corpus owners, quality for engineers."""
    flags = streamlit_flags(load_settings(), port, address)
    env = dict(os.environ)
    if secrets is not None:
        env["STREAMLIT_SECRETS_FILES"] = str(secrets.resolve())
    command = [sys.executable, "-m", "streamlit", "run", str(APP), *flags]
    typer.echo("starting the app; Streamlit prints its address (Ctrl+C stops)", err=True)
    # Become the server (no child process): a signal to this process, from a terminal or a supervisor, stops it.
    os.execve(sys.executable, command, env)


def register(app: typer.Typer) -> None:
    app.command("ui")(ui)
