"""Choose the hybrid-fusion defaults on a BEIR *train* split (never the test split). Prints a table; asserts nothing.

    python -m benchmarks.tune_retrieval [--dataset ../shared/data/beir/scifact] [--split train] [--json OUT]

Ingests the corpus into its evaluation collection on first use (as `assistant eval retrieval` does), then
evaluates every combination of RRF k, dense/BM25 weights and candidate depth in one process, best first.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from assistant.cli_progress import terminal_progress
from assistant.components import open_components
from assistant.settings import FusionMethod, RetrievalMode, load_settings
from evals.corpus import prepare_collection
from evals.datasets import load_dataset
from evals.retrieval import evaluate

DEFAULT_DATASET = Path(__file__).resolve().parents[2] / "shared/data/beir/scifact"
RRF_KS = [1, 2, 5, 10, 30, 60]
WEIGHTS = [(1.0, 1.0), (1.0, 0.5), (1.0, 0.75), (0.75, 1.0)]  # (dense, BM25)
CANDIDATES = [100]
DBSF_CANDIDATES = [300, 600, 1000]  # an evaluation ranks 100 documents, so at least 300 chunks are fetched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--split", default="train")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--fusions", default="rrf,dbsf", help="Which fusion grids to run (comma-separated).")
    args = parser.parse_args()
    if args.split == "test":
        parser.error("tune on a train or dev split; the test split is for reporting only")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = load_settings()
    console = Console()
    dataset = load_dataset(args.dataset, args.split)
    rows: list[dict[str, Any]] = []
    with open_components(settings) as components:
        with terminal_progress(console) as progress:
            collection, _ = prepare_collection(components, dataset, None, progress)
        base = components.retriever(collection)
        for mode in (RetrievalMode.dense, RetrievalMode.bm25):
            run = evaluate(base, dataset, mode)
            rows.append({"mode": mode.value, **run.aggregate})
            console.print(f"{mode}: nDCG@10 {run.aggregate['ndcg@10']:.4f}")
        rrf_grid = itertools.product(RRF_KS, WEIGHTS, CANDIDATES) if "rrf" in args.fusions else []
        for rrf_k, (w_dense, w_sparse), candidates in rrf_grid:
            base.settings = settings.retrieval.model_copy(
                update={
                    "fusion": FusionMethod.rrf,
                    "rrf_k": rrf_k,
                    "dense_weight": w_dense,
                    "sparse_weight": w_sparse,
                    "candidates": candidates,
                }
            )
            run = evaluate(base, dataset, RetrievalMode.hybrid)
            rows.append(
                {
                    "mode": "hybrid",
                    "rrf_k": rrf_k,
                    "dense_weight": w_dense,
                    "sparse_weight": w_sparse,
                    "candidates": candidates,
                    **run.aggregate,
                }
            )
            console.print(
                f"hybrid k={rrf_k} w=({w_dense},{w_sparse}) c={candidates}: "
                f"nDCG@10 {run.aggregate['ndcg@10']:.4f} R@100 {run.aggregate['recall@100']:.4f}"
            )
        for candidates in DBSF_CANDIDATES if "dbsf" in args.fusions else []:
            dbsf = {"fusion": FusionMethod.dbsf, "candidates": candidates}
            base.settings = settings.retrieval.model_copy(update=dbsf)
            run = evaluate(base, dataset, RetrievalMode.hybrid)
            rows.append({"mode": "hybrid dbsf", "candidates": candidates, **run.aggregate})
            console.print(f"hybrid dbsf c={candidates}: nDCG@10 {run.aggregate['ndcg@10']:.4f}")
    rows.sort(key=lambda r: -r["ndcg@10"])
    table = Table(title=f"{dataset.name} {args.split}: {len(dataset.queries)} queries, best first")
    columns = ("mode", "rrf_k", "dense_weight", "sparse_weight", "candidates", "ndcg@10", "recall@100")
    for column in columns:
        table.add_column(column)
    for r in rows:
        table.add_row(*(f"{r[c]:.4f}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in columns))
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
