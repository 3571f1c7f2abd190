"""How far can fusing MiniLM and BM25 go? A study of fusion variants beyond what Qdrant offers. Asserts nothing.

    python -m benchmarks.fusion_study [--dataset ../shared/data/beir/scifact] [--splits train,test] [--json OUT]

For every query, each retriever's own candidates (dense and BM25, 300 chunks each, filtered by the asker's groups
as always) are fetched once; the variants are then fused in Python: score normalisation (min-max, z-score, DBSF's
mean +- 3 sigma), at chunk level or document level (a document's best chunk per retriever), and the dense weight.
It exists to show whether a fusion Qdrant lacks would reach a quality target before anyone builds it in. Report
choices on the train split; the test split is printed for the record only.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from assistant.access import Principal
from assistant.cli_progress import terminal_progress
from assistant.components import open_components
from assistant.settings import load_settings
from assistant.store import SearchQuery
from evals.corpus import prepare_collection
from evals.datasets import load_dataset
from evals.metrics import mean_scores, score_query

DEFAULT_DATASET = Path(__file__).resolve().parents[2] / "shared/data/beir/scifact"
CANDIDATES = 300
DENSE_WEIGHTS = [0.8, 1.0, 1.2]

Hit = tuple[str, str, float]  # (doc id, chunk id, score)
Normaliser = Callable[[np.ndarray], np.ndarray]


def min_max(a: np.ndarray) -> np.ndarray:
    span = float(a.max() - a.min())
    return np.asarray((a - a.min()) / (span if span > 0 else 1.0))


def z_score(a: np.ndarray) -> np.ndarray:
    return np.asarray((a - a.mean()) / (float(a.std()) or 1.0))


def three_sigma(a: np.ndarray) -> np.ndarray:
    low, high = a.mean() - 3 * a.std(), a.mean() + 3 * a.std()
    return np.asarray(np.clip((a - low) / ((high - low) or 1.0), 0.0, 1.0))


NORMALISERS: dict[str, Normaliser] = {"min-max": min_max, "z-score": z_score, "3-sigma": three_sigma}


def fuse(lists: Sequence[tuple[list[Hit], float]], normalise: Normaliser, by_document: bool) -> list[str]:
    """Weighted sum of normalised scores; a candidate missing from one list gets nothing from it."""
    total: dict[str, float] = {}
    owner: dict[str, str] = {}
    for hits, weight in lists:
        if not hits:
            continue
        best: dict[str, float] = {}
        for doc_id, chunk_id, score in hits:  # hits arrive best first
            key = doc_id if by_document else chunk_id
            owner[key] = doc_id
            best.setdefault(key, score)
        keys = list(best)
        for key, value in zip(keys, normalise(np.array([best[k] for k in keys])), strict=True):
            total[key] = total.get(key, 0.0) + weight * float(value)
    ranked = sorted(total, key=lambda k: -total[k])
    return list(dict.fromkeys(owner[k] for k in ranked))[:100]


def candidates(split: str, dataset_path: Path, console: Console) -> list[dict[str, Any]]:
    settings = load_settings()
    dataset = load_dataset(dataset_path, split)
    with open_components(settings) as components:
        with terminal_progress(console) as progress:
            collection, _ = prepare_collection(components, dataset, None, progress)
        retriever, store = components.retriever(collection), components.store
        rows = []
        for query in dataset.queries:
            if not query.relevant:
                continue
            principal = Principal.of(f"eval:{query.qid}", list(query.groups))
            dense = retriever.embedder.embed_query(query.text).tolist()
            sparse = retriever.bm25.embed_query(query.text)
            searches = {"dense": SearchQuery(dense=dense, sparse=None, limit=CANDIDATES)}
            if sparse.indices:
                searches["bm25"] = SearchQuery(dense=None, sparse=sparse, limit=CANDIDATES)
            row: dict[str, Any] = {"relevant": query.relevant, "dense": [], "bm25": []}
            for name, search in searches.items():
                row[name] = [(h.doc_id, h.id, h.score) for h in store.search(collection, principal, search)]
            rows.append(row)
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--splits", default="train,test")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    console = Console()
    results: list[dict[str, Any]] = []
    for split in args.splits.split(","):
        rows = candidates(split, args.dataset, console)
        for (name, normalise), by_document, weight in itertools.product(
            NORMALISERS.items(), (False, True), DENSE_WEIGHTS
        ):
            scores = mean_scores(
                [
                    score_query(fuse([(r["dense"], weight), (r["bm25"], 1.0)], normalise, by_document), r["relevant"])
                    for r in rows
                ]
            )
            level = "document" if by_document else "chunk"
            results.append({"split": split, "normalise": name, "level": level, "dense_weight": weight, **scores})
    table = Table(title=f"fusion variants, {CANDIDATES} candidates per retriever")
    for column in ("split", "normalise", "level", "dense_weight", "ndcg@10", "recall@100"):
        table.add_column(column)
    for r in results:
        figures = (f"{r['ndcg@10']:.4f}", f"{r['recall@100']:.4f}")
        table.add_row(r["split"], r["normalise"], r["level"], str(r["dense_weight"]), *figures)
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
