"""Aggregate figures of an evaluation run as one rich table, for every command that prints them."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def render_aggregate(title: str, aggregate: dict[str, float], console: Console, digits: int) -> None:
    table = Table(title=title)
    for name in aggregate:
        table.add_column(name)
    table.add_row(*(f"{v:.{digits}f}" for v in aggregate.values()))
    console.print(table)
