"""BM25's IDF side channel: how much an unprivileged user's BM25 scores and ranks move when documents they may not
read are added to the collection. Prints figures; asserts nothing.

    python -m benchmarks.idf_leak [--json benchmarks/results/idf-leak.json]

Real components (MiniLM, Qdrant's BM25, Qdrant Edge) in a temporary data directory. Every search runs as Dana
(`everyone`), through the retriever, with the groups filter inside the query, exactly as `assistant search` does;
restricted chunks are never returned, yet Qdrant computes BM25's IDF over every point of the collection.

1. Controlled: the handbook's `company/` documents and two public notes, one naming a project's code name once,
   the other an anchor word no restricted note uses. Notes readable only by hr-compensation that name the code name
   are added k at a time. After each sync Dana searches for the code name (BM25, as `assistant search --mode bm25
   --json` shows the score), for the anchor, and for both words (BM25 and the default hybrid mode). From the two
   scores and the public notes' text alone (BM25 parameters are public) she recovers how many restricted chunks
   name the code name.
2. The sample handbook: Dana's top 10 for the handbook's everyone-questions and for the title of every restricted
   document, on a collection of the handbook's public documents alone vs the whole handbook (the restricted
   documents present, never returned to her): rankings and scores that changed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from assistant.access import Principal
from assistant.components import Components, open_components
from assistant.settings import RetrievalMode, load_settings
from evals.datasets import load_golden
from ingestion.catalog import read_catalog
from ingestion.run import run_ingest

REPO = Path(__file__).resolve().parents[1]
HANDBOOK = REPO / "samples" / "handbook"
DANA = Principal.of("dana", ["everyone"])
CODE_NAME = "zephyrine"
ANCHOR = "quokka"
STEPS = (0, 1, 2, 4, 8, 16)
ACCESS = """rules:
  - match: "public/**"
    groups: [everyone]
  - match: "restricted/**"
    groups: [hr-compensation]
"""
PUBLIC_NOTE = "# Project {word}\n\nThe kickoff notes for project {word} are in the wiki; ask the programme office.\n"
ANCHOR_NOTE = "# Mascot\n\nThe {word} on the lobby poster is our mascot; the programme office chose it.\n"
RESTRICTED_NOTE = (
    "# Compensation review {n}\n\nRound {n} of the {word} retention bonuses: {n} people, budget {budget} dollars, "
    "approved by the compensation committee.\n"
)


def sync(components: Components, source: Path, collection: str) -> None:
    summary = run_ingest(components, source, collection)
    if not summary.ok:
        raise SystemExit(f"ingest of {source} into {collection} failed")


def bm25_weight(components: Components, collection: str, doc_id: str, word: str) -> float:
    """The term's document weight in the chunk's BM25 vector: computable by anyone who may read the chunk."""
    [chunk] = [c for c in components.store.iter_chunks(collection) if c.doc_id == doc_id]
    [term] = components.bm25.embed_query(word).indices
    vector = components.bm25.embed_document(chunk.passage)
    return vector.values[vector.indices.index(term)]


def score_of(components: Components, collection: str, question: str, doc_id: str) -> float:
    result = components.retriever(collection).search(DANA, question, top_k=10, mode=RetrievalMode.bm25)
    return next(c.score for c in result.chunks if c.doc_id == doc_id)


def rank_of(components: Components, collection: str, question: str, doc_id: str, mode: RetrievalMode) -> int | None:
    result = components.retriever(collection).search(DANA, question, top_k=20, mode=mode)
    return next((c.rank for c in result.chunks if c.doc_id == doc_id), None)


def chunks_with(components: Components, collection: str, word: str) -> int:
    [term] = components.bm25.embed_query(word).indices
    return sum(
        term in components.bm25.embed_document(c.passage).indices for c in components.store.iter_chunks(collection)
    )


def controlled(components: Components, root: Path) -> dict[str, Any]:
    """Part 1: restricted notes naming the code name, added k at a time."""
    corpus = root / "controlled"
    (corpus / "public").mkdir(parents=True)
    (corpus / "restricted").mkdir()
    for path in (HANDBOOK / "company").glob("*.md"):
        shutil.copy(path, corpus / "public" / path.name)
    (corpus / "access.yaml").write_text(ACCESS, encoding="utf-8")
    (corpus / "public" / "project.md").write_text(PUBLIC_NOTE.format(word=CODE_NAME), encoding="utf-8")
    (corpus / "public" / "mascot.md").write_text(ANCHOR_NOTE.format(word=ANCHOR), encoding="utf-8")
    collection = "idf-controlled"
    steps: list[dict[str, Any]] = []
    added = 0
    for k in STEPS:
        while added < k:
            added += 1
            note = RESTRICTED_NOTE.format(n=added, word=CODE_NAME, budget=1000 * added + 17)
            (corpus / "restricted" / f"review-{added:02d}.md").write_text(note, encoding="utf-8")
        sync(components, corpus, collection)
        project, mascot = "public/project.md", "public/mascot.md"
        code_idf = score_of(components, collection, CODE_NAME, project) / bm25_weight(
            components, collection, project, CODE_NAME
        )
        anchor_idf = score_of(components, collection, ANCHOR, mascot) / bm25_weight(
            components, collection, mascot, ANCHOR
        )
        # Dana reads one chunk with the anchor; a restricted one is assumed not to (here none does)
        points = (math.exp(anchor_idf) - 1) * 1.5 + 0.5  # idf = ln(1 + (N - n + 0.5) / (n + 0.5)), n = 1
        spread = math.exp(code_idf) - 1
        chunks_named = (points + 0.5 - 0.5 * spread) / (1 + spread)
        both = f"{CODE_NAME} {ANCHOR}"
        steps.append(
            {
                "restricted_notes": k,
                "bm25_score_code_name": round(score_of(components, collection, CODE_NAME, project), 5),
                "points_estimated": round(points, 2),
                "points_actual": components.store.count(collection),
                "chunks_naming_code_name_estimated": round(chunks_named, 2),
                "chunks_naming_code_name_actual": chunks_with(components, collection, CODE_NAME),
                "rank_project_note_bm25": rank_of(components, collection, both, project, RetrievalMode.bm25),
                "rank_mascot_note_bm25": rank_of(components, collection, both, mascot, RetrievalMode.bm25),
                "rank_project_note_hybrid": rank_of(components, collection, both, project, RetrievalMode.hybrid),
                "rank_mascot_note_hybrid": rank_of(components, collection, both, mascot, RetrievalMode.hybrid),
            }
        )
    scores = [s["bm25_score_code_name"] for s in steps]
    return {"steps": steps, "distinct_scores": len(set(scores)), "steps_measured": len(scores)}


def handbook_subset(root: Path, public_only: bool) -> Path:
    target = root / ("handbook-public" if public_only else "handbook-full")
    shutil.copytree(HANDBOOK, target)
    if public_only:  # keep what `everyone` may read: company/ and the password policy
        for folder in target.iterdir():
            if folder.is_dir() and folder.name not in {"company", "security"}:
                shutil.rmtree(folder)
        for path in (target / "security").iterdir():
            if not path.name.startswith("password-and-mfa-policy."):
                path.unlink()
    return target


def top10(components: Components, collection: str, question: str, mode: RetrievalMode) -> list[tuple[str, float]]:
    result = components.retriever(collection).search(DANA, question, top_k=10, mode=mode)
    return [(c.doc_id, c.score) for c in result.chunks]


def handbook(components: Components, root: Path) -> dict[str, Any]:
    """Part 2: the sample handbook with and without the documents Dana may not read."""
    sync(components, handbook_subset(root, public_only=True), "idf-public")
    sync(components, handbook_subset(root, public_only=False), "idf-full")
    restricted = [d for d in read_catalog(components.settings, "idf-full").documents if not DANA.may_read(d.groups)]
    golden = [
        q.text for q in load_golden(REPO / "samples" / "handbook-golden.jsonl").queries if q.groups == ("everyone",)
    ]
    probes = {"everyone questions": golden, "restricted titles": [d.title for d in restricted if d.title]}
    figures: dict[str, Any] = {
        "restricted_documents": len(restricted),
        "points_public": components.store.count("idf-public"),
        "points_full": components.store.count("idf-full"),
    }
    for kind, questions in probes.items():
        for mode in (RetrievalMode.bm25, RetrievalMode.hybrid):
            reordered = top_changed = 0
            deltas: list[float] = []
            for question in questions:
                before = top10(components, "idf-public", question, mode)
                after = top10(components, "idf-full", question, mode)
                reordered += [d for d, _ in before] != [d for d, _ in after]
                top_changed += bool(before and after and before[0][0] != after[0][0])
                scores = dict(after)
                deltas += [abs(scores[d] - s) / abs(s) for d, s in before if d in scores and s]
            figures[f"{kind} ({mode.value})"] = {
                "queries": len(questions),
                "top10_order_changed": reordered,
                "top1_changed": top_changed,
                "score_change_median": round(statistics.median(deltas), 4) if deltas else None,
                "score_change_max": round(max(deltas), 4) if deltas else None,
            }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = load_settings(data_dir=root / "data")
        with open_components(settings) as components:
            figures = {
                "retrieval": {"fusion": settings.retrieval.fusion.value, "bm25": components.bm25.fingerprint},
                "controlled": controlled(components, root),
                "handbook": handbook(components, root),
            }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
