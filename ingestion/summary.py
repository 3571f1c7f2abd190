"""What a sync did, for people (a table) and for tools (`--json`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from assistant.terminal import shown
from ingestion.sources import SourceFailure


@dataclass
class SyncSummary:
    collection: str
    source: str
    dry_run: bool
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    regrouped: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    uncovered: list[str] = field(default_factory=list)
    failed: list[SourceFailure] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # not deleted although absent: some entries were unidentifiable
    unmatched_rules: list[str] = field(default_factory=list)  # access rules that decide no document (typo, shadowed)
    rule_warnings: list[str] = field(default_factory=list)  # slash-free patterns deciding documents below the root
    widened: list[str] = field(default_factory=list)  # documents whose readers grew (or would grow, in a dry run)
    flagged: list[str] = field(default_factory=list)  # "doc id: sign" for text aimed at the assistant, this run
    chunks: int = 0  # chunks embedded and written by this run
    chunks_in_index: int = 0
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds spent in plan, read, embed, write, index
    refused: bool = False  # nothing was planned or written (an invalid access.yaml, a strict-mode refusal)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def warnings(self) -> list[str]:
        """Everything about the access rules a person should look at (`--fail-on-warnings` exits 1 on any)."""
        return self.unmatched_rules + self.rule_warnings + self.widened

    @property
    def chunks_per_second(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "source": self.source,
            "dry_run": self.dry_run,
            "refused": self.refused,
            "added": len(self.added),
            "changed": len(self.changed),
            "deleted": len(self.deleted),
            "regrouped": len(self.regrouped),
            "unchanged": len(self.unchanged),
            "uncovered": list(self.uncovered),
            "failed": [{"path": f.path, "error": f.error} for f in self.failed],
            "ignored": list(self.ignored),
            "held": list(self.held),
            "unmatched_rules": list(self.unmatched_rules),
            "rule_warnings": list(self.rule_warnings),
            "widened": list(self.widened),
            "flagged": list(self.flagged),
            "chunks": self.chunks,
            "chunks_in_index": self.chunks_in_index,
            "seconds": round(self.seconds, 3),
            "phase_seconds": {name: round(value, 3) for name, value in self.phases.items()},
            "chunks_per_second": round(self.chunks_per_second, 2),
            "documents": {
                "added": self.added,
                "changed": self.changed,
                "deleted": self.deleted,
                "regrouped": self.regrouped,
            },
        }

    def render(self, console: Console) -> None:
        if self.refused:  # no table of zeros, no timings: only what stopped the sync and what to fix
            console.print(f"[red]nothing synced[/red] into collection {shown(self.collection)}:", highlight=False)
            self._render_problems(console)
            return
        list_limit = 50 if self.dry_run else 6  # a dry run is read for its diff
        # Paths, ids, titles and errors come from documents: escaped, so "[/bold]" in a file name is just text.
        title = f"{'Dry run: would sync' if self.dry_run else 'Synced'} {self.source} -> collection {self.collection}"
        title = shown(title)
        table = Table(title=title, show_header=True, header_style="bold")
        table.add_column("documents")
        table.add_column("count", justify="right")
        table.add_column("which")
        for label, ids in (
            ("added", self.added),
            ("changed", self.changed),
            ("deleted", self.deleted),
            ("regrouped", self.regrouped),
            ("uncovered (no access rule: not indexed)", self.uncovered),
        ):
            table.add_row(label, str(len(ids)), _preview(ids, list_limit))
        table.add_row("unchanged", str(len(self.unchanged)), "")
        table.add_row("ignored (file types, links)", str(len(self.ignored)), _preview(self.ignored, list_limit))
        table.add_row("failed", str(len(self.failed)), "", style="red" if self.failed else None)
        console.print(table)
        self._render_problems(console)
        if self.held:
            console.print(
                f"[yellow]{len(self.held)} indexed document(s) are missing from the source but were kept: some "
                "entries could not be read, and one of them may be a missing document. Fix the failed entries "
                "and sync again to delete the rest.[/yellow]"
            )
        if self.uncovered:
            console.print(
                f"[yellow]{len(self.uncovered)} document(s) match no rule in access.yaml and are not searchable "
                "by anyone; add a rule to publish them[/yellow]"
            )
        if not self.dry_run:
            console.print(
                f"{self.chunks} chunks embedded in {self.seconds:.1f} s ({self.chunks_per_second:.1f} chunks/s); "
                f"{self.chunks_in_index} chunks in the index"
            )
            console.print("time: " + ", ".join(f"{name} {value:.1f} s" for name, value in self.phases.items()))

    def _render_problems(self, console: Console) -> None:
        """Failures, access rules that match nothing and flagged documents: one line each."""
        for failure in self.failed:
            console.print(f"[red]failed[/red] {shown(failure.path)}: {shown(failure.error)}", highlight=False)
        for message in self.unmatched_rules + self.rule_warnings:
            console.print(f"[yellow]{shown(message)} (docs/ingestion.md, access rules)[/yellow]", highlight=False)
        verb = "would widen" if self.dry_run or self.refused else "widened"
        for message in self.widened:
            console.print(f"[yellow]{verb}[/yellow] {shown(message)}", highlight=False)
        for flag in self.flagged:
            console.print(
                f"[yellow]flagged[/yellow] {shown(flag)} (indexed; the answer format shows it only as quoted text: "
                "check the document)",
                highlight=False,
            )


def _preview(ids: list[str], limit: int) -> str:
    listed = shown(", ".join(ids[:limit]))
    return listed + (f" ... (+{len(ids) - limit})" if len(ids) > limit else "")
