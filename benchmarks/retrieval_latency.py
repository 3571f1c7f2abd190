"""End-to-end retrieval latency: query embedding + hybrid groups-filtered search in Qdrant Edge, one query at a
time, at BEIR scale. Prints p50/p95; asserts nothing.

    python -m benchmarks.retrieval_latency [--dataset ../shared/data/beir/scifact] [--queries 300]

Uses the evaluation collection of the dataset (ingested on first use, like `assistant eval retrieval`).
Targets from the retrieval issue: p50 <= 30 ms, p95 <= 60 ms on 2 cores. The same timings per embedder backend
are a column of `python -m benchmarks.ingest --backends ...` (`query_timings`, on the collection each row built).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from rich.console import Console

from assistant.access import Principal
from assistant.cli_progress import terminal_progress
from assistant.components import open_components
from assistant.retriever import Retriever
from assistant.settings import load_settings
from evals.corpus import prepare_collection
from evals.datasets import EVAL_GROUP, load_dataset

DEFAULT_DATASET = Path(__file__).resolve().parents[2] / "shared/data/beir/scifact"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def query_timings(retriever: Retriever, principal: Principal, questions: list[str]) -> dict[str, float]:
    """p50/p95 of a whole search and of the query embedding alone, one question at a time, after 10 to warm up."""
    for question in questions[:10]:  # warm up: model, caches
        retriever.search(principal, question)
    timings: dict[str, list[float]] = {"end_to_end_ms": [], "embed_ms": []}
    for question in questions:
        start = time.perf_counter()
        retriever.search(principal, question)
        timings["end_to_end_ms"].append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        retriever.embedder.embed_query(question)
        timings["embed_ms"].append((time.perf_counter() - start) * 1000)
    figures: dict[str, float] = {"queries": len(questions)}
    for name, values in timings.items():
        figures[f"{name}_p50"] = statistics.median(values)
        figures[f"{name}_p95"] = percentile(values, 0.95)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = load_settings()
    dataset = load_dataset(args.dataset, "test")
    principal = Principal.of("latency", [EVAL_GROUP])
    with open_components(settings) as components:
        with terminal_progress(Console()) as progress:
            collection, _ = prepare_collection(components, dataset, None, progress)
        questions = [q.text for q in dataset.queries][: args.queries]
        figures = query_timings(components.retriever(collection), principal, questions)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
