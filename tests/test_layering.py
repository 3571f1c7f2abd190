"""The runtime core imports none of its consumers (DESIGN.md: imports flow one way)."""

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
