"""What sharing the embedded index costs a second process, against the alternative it was chosen over. The sample
handbook is ingested into a scratch data directory; then, on 2 cores:

- a store call (hybrid search of the golden questions, a full scroll) made by the holder itself and by a second
  store that goes through the holder's socket (`assistant/store/peer.py`; both in this process, so the socket's
  two ends also share one interpreter: a bound from above for a separate process);
- a retrieval as `assistant ask` does it (embed, search, evidence), the same way;
- the rejected alternative, a private read-only copy per process (Qdrant Edge has no read-only open): copying the
  shard folder and loading it, which every CLI command would pay and whose answers go stale at the next sync;
- `assistant ingest samples/handbook --dry-run` as a separate process, with the index held by this one and free.

    python -m benchmarks.shared_index [--rounds 3]

Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from qdrant_edge import EdgeShard

from assistant.access import Principal
from assistant.components import Components, open_components
from assistant.settings import CHECKOUT, load_settings
from assistant.store import SearchQuery
from evals.datasets import load_golden
from ingestion.run import run_ingest

T = TypeVar("T")
READER = Principal(
    "bench",
    frozenset({"everyone", "engineering", "hr", "hr-compensation", "finance", "legal", "executives", "security"}),
)


def each(items: list[T], call: Callable[[T], object]) -> list[float]:
    """Seconds of one call per item."""
    seconds = []
    for item in items:
        started = time.perf_counter()
        call(item)
        seconds.append(time.perf_counter() - started)
    return seconds


def line(name: str, seconds: list[float], unit: str = "ms") -> str:
    scale = 1000 if unit == "ms" else 1
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * scale
    return f"  {name:46} p50 {statistics.median(seconds) * scale:8.2f} {unit}  p95 {p95:8.2f} {unit}  n={len(seconds)}"


def measure(name: str, components: Components, questions: list[str], rounds: int) -> None:
    """Store calls and retrievals made through `components` (the holder's, or a second one's)."""
    store, collection, embedder, bm25 = (
        components.store,
        components.collection(None),
        components.embedder,
        components.bm25,
    )
    top_k = components.settings.retrieval.top_k
    queries = [SearchQuery(list(embedder.embed_query(q)), bm25.embed_query(q), top_k) for q in questions]
    print(line(f"store search, {name}", each(queries * rounds, lambda q: store.search(collection, READER, q))))
    print(line(f"full scroll, {name}", each([collection] * rounds, lambda c: list(store.iter_chunks(c)))))
    retriever = components.retriever(None)
    print(line(f"retrieval as `ask` does it, {name}", each(questions, lambda q: retriever.search(READER, q))))


def private_copy(shard: Path, scratch: Path) -> None:
    """The rejected alternative: a process's own copy of the shard, loaded."""
    target = scratch / "copy"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(shard, target)
    EdgeShard.load(str(target)).close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    questions = [q.text for q in load_golden(CHECKOUT / "samples/handbook-golden.jsonl").queries]
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "data"
        settings = load_settings(data_dir=data_dir)
        handbook = str(CHECKOUT / "samples/handbook")
        env = {**os.environ, "ASSISTANT_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
        dry_run = [sys.executable, "-m", "assistant.cli", "ingest", handbook, "--dry-run"]
        with open_components(settings) as holder:
            assert run_ingest(holder, Path(handbook), None).ok
            collection = holder.collection(None)
            print(f"{len(questions)} golden questions, {holder.store.count(collection)} chunks, 2 cores")
            second = Components(settings, embedder=holder.embedder)
            try:
                measure("holder", holder, questions, args.rounds)
                measure("through the holder", second, questions, args.rounds)
            finally:
                second.close()
            shard = settings.index_dir / collection
            size = sum(f.stat().st_size for f in shard.rglob("*") if f.is_file()) / 1e6
            copies = each([shard] * args.rounds, lambda s: private_copy(s, Path(scratch)))
            print(line(f"private read-only copy ({size:.1f} MB), per process", copies))
            held = each([dry_run] * args.rounds, lambda c: subprocess.run(c, env=env, check=True, capture_output=True))
            print(line("`ingest --dry-run` process, index held here", held, "s"))
        free = each([dry_run] * args.rounds, lambda c: subprocess.run(c, env=env, check=True, capture_output=True))
        print(line("`ingest --dry-run` process, index free", free, "s"))


if __name__ == "__main__":
    main()
