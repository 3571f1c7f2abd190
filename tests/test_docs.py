"""The README and docs/ point only at things that exist: every relative link resolves to a file, every
`assistant ...` command they name is a registered command (and sub-command), every `python -m` module exists."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import typer

from assistant.cli import build_app
from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)
_COMMAND = re.compile(r"(?<![\w/.-])assistant((?: [a-z][a-z-]*){1,2})")
_MODULE = re.compile(r"python -m ([\w.]+)")


def code_of(page: Path) -> str:
    return "\n".join(_CODE.findall(page.read_text(encoding="utf-8")))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    for target in _LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        assert (page.parent / target.split("#")[0]).exists(), f"{page.name}: link to missing {target}"


def test_named_commands_exist() -> None:
    root: Any = typer.main.get_command(build_app())  # a click group (Typer's own click, by version)
    named = {m.strip() for page in PAGES for m in _COMMAND.findall(code_of(page))}
    assert len(named) > 20  # the pages do name commands: the pattern found them
    for words in sorted(named):
        name, *rest = words.split()
        command = root.commands.get(name)
        assert command is not None, f"`assistant {words}`: no command {name!r}"
        if rest and getattr(command, "commands", None):
            assert rest[0] in command.commands, f"`assistant {words}`: {name} has no sub-command {rest[0]!r}"


def test_named_modules_exist() -> None:
    modules = {m for page in PAGES for m in _MODULE.findall(code_of(page)) if m not in {"pytest", "venv", "pip"}}
    assert modules, "the pages name the benchmark scripts"
    for module in sorted(modules):
        assert importlib.util.find_spec(module) is not None, f"`python -m {module}` names no module"
