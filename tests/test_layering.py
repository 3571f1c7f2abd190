"""Imports flow one way, down the package order, and command modules import no other.

The package order, lowest first: a package may import only the packages before it. The runtime core is at the
bottom; ingestion feeds the index; evals measure retrieval and answers over it (and own the held-out evaluation
sets); tuning builds training data from the index, checks it against those held-out sets and evaluates adapters;
the app and the benchmarks sit on top. Shared pieces live in the lowest package that needs them (the recipe in
`assistant.recipe`, the held-out sets in `evals.held_out`, `git_commit` in `evals.run_files`), and the watchers a
sync runs (the impact report) are found through the `assistant.sync_watchers` entry-point group, as commands are.
Imports inside functions count too: a cycle hidden in a function body is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ("assistant", "ingestion", "evals", "tuning", "ui", "benchmarks")


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_each_package_imports_only_the_packages_below_it() -> None:
    offenders = []
    for rank, package in enumerate(ORDER):
        above = set(ORDER[rank + 1 :])
        for path in sorted((ROOT / package).rglob("*.py")):
            offenders += [
                f"{path.relative_to(ROOT)}:{line}: {module}"
                for line, module in imported_packages(path)
                if module.split(".")[0] in above
            ]
    assert offenders == []


def test_assistant_imports_no_consumer_package() -> None:
    offenders = [
        f"{path.name}: {module}"
        for path in (ROOT / "assistant").rglob("*.py")
        for _, module in imported_packages(path)
        if module.split(".")[0] in set(ORDER[1:])
    ]
    assert offenders == []


def test_only_the_cli_root_loads_command_modules() -> None:
    """Command modules (`*_cli.py`, `cli.py` of a package) are entry points, never libraries for each other."""
    root = ROOT
    offenders = []
    for package in ("assistant", "ingestion", "evals", "tuning", "ui", "benchmarks"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module:
                    leaf = node.module.split(".")[-1]
                    if leaf.endswith("_cli") or (leaf == "cli" and node.module != "assistant.cli"):
                        offenders.append(f"{path.relative_to(root)}: {node.module}")
    assert offenders == []
