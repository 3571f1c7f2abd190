"""`assistant serve-model [--install [--gpu]] [--print]`: start the serving engine (vLLM) for the configured model
and adapter; the app and the CLI use it with generator.backend=engine (see assistant/serve_model.py)."""

from __future__ import annotations

import shlex
from typing import Annotated

import typer

from assistant.serve_model import install_vllm, prepare, run_engine
from assistant.settings import load_settings


def serve_model(
    install: Annotated[
        bool, typer.Option("--install", help="First make vLLM's own environment (engine.python), then serve.")
    ] = False,
    gpu: Annotated[bool, typer.Option("--gpu", help="With --install: the CUDA build.")] = False,
    merged: Annotated[
        bool | None,
        typer.Option(
            "--merged/--lora",
            help="Serve the adapter merged into the base weights (faster on CPU; one adapter, restart to promote), "
            "or as LoRA (runtime loading). Default: engine.merge_adapter.",
        ),
    ] = None,
    print_only: Annotated[bool, typer.Option("--print", help="Print the command; start nothing.")] = False,
) -> None:
    """Serve the answering model through vLLM (OpenAI-compatible API at engine.url), with the served adapter by its
    id and the house format per request. Point the app at it: ASSISTANT_GENERATOR__BACKEND=engine."""
    settings = load_settings()
    if merged is not None:
        engine = settings.engine.model_copy(update={"merge_adapter": merged})
        settings = settings.model_copy(update={"engine": engine})
    if install:
        python = install_vllm(settings, gpu=gpu)
        typer.echo(f"vLLM installed for {python}")
    command = prepare(settings)
    environment = " ".join(f"{k}={shlex.quote(v)}" for k, v in command.env.items())
    typer.echo(f"{environment} {shlex.join(command.argv)}")
    if print_only:
        return
    typer.echo(f"serving on {settings.engine.url}; answer through it with ASSISTANT_GENERATOR__BACKEND=engine")
    raise typer.Exit(run_engine(command))


def register(app: typer.Typer) -> None:
    app.command("serve-model")(serve_model)
