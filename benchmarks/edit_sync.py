"""How long a one-paragraph edit takes to sync with its impact report, as a corpus owner's re-ingest does it: the
sample handbook ingested once into a scratch data directory, then one document edited and synced with the golden
set's impact watcher, twice per round: re-asking every golden question before the sync (as before) and only those
expecting a touched document (now). Prints figures, asserts nothing.

    python -m benchmarks.edit_sync [--rounds 3]

The embedder and the index are loaded before the timing starts (the app holds them); each round edits a different
sentence of `company/holidays.md`, so every sync re-embeds one document.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from assistant.components import open_components
from assistant.retriever import Retriever
from assistant.settings import CHECKOUT, load_settings
from evals.datasets import load_golden
from evals.impact import GoldenImpact
from ingestion.run import run_ingest
from ingestion.state import DocumentState

EDITED = Path("company/holidays.md")


class EveryQuestion(GoldenImpact):
    """The impact watcher as it was: the baseline ranks every golden question, whatever the sync touches."""

    def before_sync(self, retriever: Retriever, documents: Mapping[str, DocumentState], touched: set[str]) -> None:
        super().before_sync(retriever, documents, {d for q in self.golden.queries for d in q.relevant})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    golden = load_golden(CHECKOUT / "samples/handbook-golden.jsonl")
    with tempfile.TemporaryDirectory() as scratch:
        corpus = Path(scratch) / "handbook"
        shutil.copytree(CHECKOUT / "samples/handbook", corpus)
        settings = load_settings(data_dir=Path(scratch) / "data")
        with open_components(settings) as components:
            assert run_ingest(components, corpus, None).ok
            times: dict[str, list[float]] = {"every question": [], "touched only": []}
            asked: dict[str, int] = {}
            for round_number in range(args.rounds):
                for name, watcher_type in (("every question", EveryQuestion), ("touched only", GoldenImpact)):
                    path = corpus / EDITED
                    path.write_text(
                        path.read_text(encoding="utf-8") + f"\n\nNote {name} {round_number}: nothing changes.\n",
                        encoding="utf-8",
                    )
                    watcher = watcher_type(golden)
                    started = time.perf_counter()
                    summary = run_ingest(components, corpus, None, watcher=watcher)
                    times[name].append(time.perf_counter() - started)
                    assert summary.ok and summary.changed == [EDITED.as_posix()] and watcher.report is not None
                    asked[name] = watcher.report.questions
    print(f"one edit of {EDITED} synced with its impact report, {args.rounds} rounds, 2 cores:")
    for name, seconds in times.items():
        print(
            f"  {name:15} golden questions re-asked {asked[name]:3}: median {statistics.median(seconds):.1f} s "
            f"(min {min(seconds):.1f}, max {max(seconds):.1f})"
        )


if __name__ == "__main__":
    main()
