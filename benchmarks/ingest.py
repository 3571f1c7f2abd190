"""Ingestion benchmark on BEIR SciFact (or any BEIR corpus.jsonl). Prints figures; asserts nothing.

    python -m benchmarks.ingest [--corpus ../shared/data/beir/scifact/corpus.jsonl] [--limit N] [--json OUT]

(1) bare SentenceTransformer.encode of exactly the chunk texts ingestion produces
(2) full ingest into Qdrant Edge (same loaded model, so neither side pays the model load)
(3) re-ingest with nothing changed
(4) re-ingest after changing 1% of the documents: how many documents and chunks were re-embedded
(5) filtered query latency on Qdrant Edge at 100k chunks (synthetic vectors), groups filter
Targets from the issue: (2)/(1) <= 1.10, (3)/(2) <= 0.05, (4) re-embeds only the changed documents, (5) p50 <= 5 ms.

    python -m benchmarks.ingest --backends torch,onnx,onnx-int8,openvino,openvino-int8 [--json OUT]

instead gives one row per embedder backend (`embedder.backend`[-int8]), each in a fresh process and data directory
so that its peak RSS is its own: the export (made by sentence-transformers, timed apart from loading it), bare
encode of the first 2,000 chunk texts and chunks/s, the full ingest of the corpus, SciFact test nDCG@10 and
recall@100 (dense, where only the embedder ranks, and hybrid, what users get), query embedding and search latency
p50/p95 (`benchmarks.retrieval_latency.query_timings`). A backend that does not install here is a row saying why.
Target of issue 35: >= 2.0x torch's chunks/s with nDCG@10 and recall@100 within 0.005 of torch's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from assistant.access import Principal
from assistant.components import Components
from assistant.embedder import Embedder
from assistant.errors import ConfigError
from assistant.settings import RetrievalMode, Settings, load_settings
from assistant.sparse import SparseVector
from assistant.store import ChunkRecord, SearchQuery, VectorSpace
from benchmarks.retrieval_latency import query_timings
from evals.corpus import prepare_collection
from evals.datasets import EVAL_GROUP, load_dataset
from evals.retrieval import evaluate
from ingestion.access_policy import AccessPolicy
from ingestion.readers import parse_document
from ingestion.sources import BeirSource, SourceEntry
from ingestion.state import SyncState
from ingestion.sync import Ingestor

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared/data/beir/scifact/corpus.jsonl"
GROUPS = ["everyone"]
ENCODE_CHUNKS = 2000  # bare encode per backend row: the first 2,000 chunk texts (every row the same ones)


def copy_corpus(corpus: Path, target: Path, limit: int | None) -> int:
    lines = [line for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    if limit:
        lines = lines[:limit]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def chunk_texts(ingestor: Ingestor, corpus: Path) -> list[str]:
    source = BeirSource(corpus, AccessPolicy.grant_all(GROUPS))
    texts: list[str] = []
    for entry in source.entries():
        assert isinstance(entry, SourceEntry)
        parsed = parse_document(entry.kind, entry.path, source.read(entry))
        texts += [c.embed_text for c in ingestor.chunker.chunk(parsed)]
    return texts


def change_one_percent(corpus: Path) -> int:
    lines = corpus.read_text(encoding="utf-8").splitlines()
    step = 100
    for i in range(0, len(lines), step):
        record = json.loads(lines[i])
        record["text"] += " (Revised: this abstract was edited for the benchmark.)"
        lines[i] = json.dumps(record)
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(range(0, len(lines), step))


def sync(ingestor: Ingestor, corpus: Path) -> Any:
    return ingestor.sync(BeirSource(corpus, AccessPolicy.grant_all(GROUPS)), "scifact")


def query_latency(root: Path, points: int, queries: int, seed: int = 7) -> dict[str, float]:
    """Store-only latency at `points` synthetic chunks; a principal in 2 of 8 groups (about a quarter readable)."""
    rng = np.random.default_rng(seed)
    components = Components(load_settings(data_dir=root, store={"backend": "edge"}))
    store = components.store
    store.ensure_collection("synthetic", VectorSpace("synthetic", 384))
    groups = [f"g{i}" for i in range(8)]
    batch = 2000
    t0 = time.perf_counter()
    for start in range(0, points, batch):
        vectors = rng.standard_normal((batch, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        records = []
        for i in range(batch):
            terms = sorted(set(rng.integers(0, 50_000, 40).tolist()))
            records.append(
                ChunkRecord(
                    doc_id=f"doc{(start + i) // 4}",
                    chunk_index=(start + i) % 4,
                    text="",
                    title="",
                    path="",
                    section=None,
                    groups=(groups[int(rng.integers(8))],),
                    doc_hash="",
                    chunk_hash="",
                    version=1,
                    dense=vectors[i],
                    sparse=SparseVector(terms, [1.0] * len(terms)),
                )
            )
        store.write_chunks("synthetic", records, {})
    store.finish_writes("synthetic")
    build_s = time.perf_counter() - t0
    principal = Principal.of("bench", ["g1", "g5"])
    timings: dict[str, list[float]] = {"dense": [], "hybrid": []}
    for _ in range(queries):
        q = rng.standard_normal(384).astype(np.float32)
        q /= np.linalg.norm(q)
        terms = sorted(set(rng.integers(0, 50_000, 6).tolist()))
        sparse = SparseVector(terms, [1.0] * len(terms))
        for mode, sp in (("dense", None), ("hybrid", sparse)):
            t = time.perf_counter()
            hits = store.search("synthetic", principal, SearchQuery(q.tolist(), sp, limit=10))
            timings[mode].append((time.perf_counter() - t) * 1000)
            assert all(set(h.groups) & principal.groups for h in hits)
    components.close()
    out = {"points": float(points), "build_and_optimize_s": build_s}
    for mode, values in timings.items():
        values.sort()
        out[f"{mode}_p50_ms"] = statistics.median(values)
        out[f"{mode}_p95_ms"] = values[int(0.95 * (len(values) - 1))]
    return out


def backend_row(spec: str, dataset_dir: Path) -> dict[str, Any]:
    """One row of the backend table (run in a process of its own: `--backend-row`)."""
    backend, _, quantization = spec.partition("-")
    work = Path(tempfile.mkdtemp(prefix=f"assistant-bench-{spec}-"))
    row: dict[str, Any] = {"backend": spec}
    try:
        embedder_settings = {"backend": backend, "quantization": quantization or "none"}
        settings = load_settings(data_dir=work / "data", embedder=embedder_settings)
        exports = settings.embedder_exports_dir
        components = Components(settings)
        t0 = time.perf_counter()
        try:
            components.embedder.dimension  # noqa: B018 - exports (onnx, openvino) and loads the model
        except ConfigError as exc:
            return row | {"unavailable": str(exc)}
        first_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        Embedder(settings.embedder, exports).dimension  # noqa: B018 - loads the export made above
        row["load_s"] = time.perf_counter() - t0
        row["export_s"] = max(0.0, first_load - row["load_s"]) if backend != "torch" else 0.0
        dataset = load_dataset(dataset_dir, "test")
        assert dataset.corpus is not None
        ingestor = Ingestor(components, SyncState(settings.state_path))
        texts = chunk_texts(ingestor, dataset.corpus)[:ENCODE_CHUNKS]  # the full ingest below embeds them all
        embedder = components.embedder
        embedder.embed_documents(texts[:8])
        t0 = time.perf_counter()
        embedder.embed_documents(texts)
        row["bare_encode_s"] = time.perf_counter() - t0
        row["chunks"] = len(texts)
        row["chunks_per_s"] = len(texts) / row["bare_encode_s"]
        print(f"{spec}: bare encode {len(texts)} chunks in {row['bare_encode_s']:.1f} s", flush=True)
        collection, summary = prepare_collection(components, dataset, None)
        assert summary is not None and summary.ok
        row["full_ingest_s"] = summary.seconds
        retriever = components.retriever(collection)
        for mode in (RetrievalMode.dense, RetrievalMode.hybrid):
            run = evaluate(retriever, dataset, mode)
            row[f"{mode.value}_ndcg@10"] = run.aggregate["ndcg@10"]
            row[f"{mode.value}_recall@100"] = run.aggregate["recall@100"]
        questions = [q.text for q in dataset.queries][:300]
        row["latency"] = query_timings(retriever, Principal.of("latency", [EVAL_GROUP]), questions)
        components.close()
        row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return row
    finally:
        shutil.rmtree(work, ignore_errors=True)


def backend_table(specs: list[str], dataset_dir: Path) -> list[dict[str, Any]]:
    """Every row in a fresh process, then each row's ratios to torch's (the first torch row)."""
    rows = []
    for spec in specs:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            command = [sys.executable, "-m", "benchmarks.ingest", "--backend-row", spec, "--dataset", str(dataset_dir)]
            done = subprocess.run([*command, "--json", out.name], check=False)
            if done.returncode == 0:
                rows.append(json.loads(Path(out.name).read_text(encoding="utf-8")))
            else:  # a crash of one backend (an import that fails, say) is its row, not the end of the table
                rows.append({"backend": spec, "unavailable": f"the row's process exited with {done.returncode}"})
        print(json.dumps(rows[-1]), flush=True)
    torch_row = next((r for r in rows if r["backend"] == "torch"), None)
    for row in rows:
        if torch_row is None or "unavailable" in row:
            continue
        row["speedup"] = row["chunks_per_s"] / torch_row["chunks_per_s"]
        deltas = {k: row[k] - torch_row[k] for k in row if k.endswith(("ndcg@10", "recall@100"))}
        row["quality_delta"] = deltas
        row["qualifies"] = row["speedup"] >= 2.0 and all(abs(d) <= 0.005 for d in deltas.values())
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--limit", type=int, default=None, help="Use only the first N documents (quick runs).")
    parser.add_argument("--points", type=int, default=100_000, help="Synthetic chunks for the latency part.")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--json", type=Path, default=None, help="Write the figures as JSON here.")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--backends", help="one row per embedder backend, e.g. torch,openvino,openvino-int8")
    parser.add_argument("--dataset", type=Path, default=DEFAULT_CORPUS.parent, help="BEIR folder for --backends")
    parser.add_argument("--backend-row", help=argparse.SUPPRESS)  # one row, in its own process
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.backends or args.backend_row:
        if args.backend_row:
            result: Any = backend_row(args.backend_row, args.dataset)
        else:
            result = {"backends": backend_table(args.backends.split(","), args.dataset), "cpu_count": os.cpu_count()}
            print(json.dumps(result, indent=2))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        return

    work = Path(tempfile.mkdtemp(prefix="assistant-bench-"))
    try:
        settings: Settings = load_settings(data_dir=work / "data")
        corpus = work / "corpus.jsonl"
        docs = copy_corpus(args.corpus, corpus, args.limit)
        components = Components(settings)
        embedder = components.embedder
        state = SyncState(settings.state_path)
        ingestor = Ingestor(components, state)
        results: dict[str, Any] = {"documents": docs, "torch_threads": __import__("torch").get_num_threads()}

        texts = chunk_texts(ingestor, corpus)
        embedder.embed_documents(texts[:8])  # load the model and warm up before any clock starts
        t0 = time.perf_counter()
        embedder._model.encode(texts, batch_size=settings.embedder.batch_size, normalize_embeddings=True)
        results["1_bare_encode_s"] = time.perf_counter() - t0
        results["chunks"] = len(texts)
        print(f"(1) bare encode: {len(texts)} chunks in {results['1_bare_encode_s']:.1f} s", flush=True)

        full = sync(ingestor, corpus)
        results["2_full_ingest_s"] = full.seconds
        results["2_phase_seconds"] = full.phases
        results["2_chunks"] = full.chunks
        print(f"(2) full ingest: {full.chunks} chunks in {full.seconds:.1f} s", flush=True)

        again = sync(ingestor, corpus)
        results["3_unchanged_s"] = again.seconds
        results["3_reembedded_chunks"] = again.chunks
        print(f"(3) unchanged re-ingest: {again.seconds:.2f} s, {again.chunks} chunks embedded", flush=True)

        changed_docs = change_one_percent(corpus)
        delta = sync(ingestor, corpus)
        results["4_changed_documents"] = changed_docs
        results["4_reembedded_documents"] = len(delta.changed) + len(delta.added)
        results["4_reembedded_chunks"] = delta.chunks
        results["4_s"] = delta.seconds
        results["4_chunks_in_index"] = delta.chunks_in_index
        print(f"(4) 1% changed: {len(delta.changed)} docs re-embedded ({delta.chunks} chunks) in {delta.seconds:.1f} s")
        components.close()
        state.close()

        results["ratio_2_over_1"] = results["2_full_ingest_s"] / results["1_bare_encode_s"]
        results["ratio_3_over_2"] = results["3_unchanged_s"] / results["2_full_ingest_s"]
        if not args.skip_latency:
            results["5_latency"] = query_latency(work / "latency", args.points, args.queries)
        print(json.dumps(results, indent=2))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
