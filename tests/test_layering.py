"""Imports flow one way: the runtime core imports none of its consumers, and command modules import no other."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "assistant"
CONSUMERS = {"ingestion", "tuning", "evals", "ui"}


def test_assistant_imports_no_consumer_package() -> None:
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in CONSUMERS]
    assert offenders == []


def test_only_the_cli_root_loads_command_modules() -> None:
    """Command modules (`*_cli.py`, `cli.py` of a package) are entry points, never libraries for each other."""
    root = CORE.parent
    offenders = []
    for package in ("assistant", "ingestion", "evals", "tuning", "ui", "benchmarks"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module:
                    leaf = node.module.split(".")[-1]
                    if leaf.endswith("_cli") or (leaf == "cli" and node.module != "assistant.cli"):
                        offenders.append(f"{path.relative_to(root)}: {node.module}")
    assert offenders == []
