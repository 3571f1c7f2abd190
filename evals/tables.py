"""Aggregate figures of an evaluation run as one rich table, for every command that prints them: one row per
metric, so that every name and value is readable at any width (a pipe or a log is 80 columns to rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def render_aggregate(title: str, aggregate: dict[str, float], console: Console, digits: int) -> None:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in aggregate.items():
        table.add_row(name, f"{value:.{digits}f}")
    console.print(table)
