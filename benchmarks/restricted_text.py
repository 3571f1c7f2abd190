"""What the restricted-text check of training lines (`tuning/restricted_text.py`) costs and finds. Prints figures;
asserts nothing.

    python -m benchmarks.restricted_text [--scifact PATH]

1. The sample handbook under its access.yaml, with the shipped recipe's allowed groups ([everyone]): time to
   build the restricted runs, how many there are, and the check of every shipped curated item (question, answer,
   quotes), with how many share 8 words in a row with a restricted document.
2. Scale: SciFact's 5,183 abstracts, all treated as restricted: build time, runs, memory of the arrays, and
   checks per second of item-sized texts.
Document text is parsed by the ingestion readers (sections stand in for chunks: the runs are the same but for
those crossing a chunk boundary). Nothing is embedded.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ingestion.access_policy import AccessPolicy
from ingestion.readers import parse_document
from tuning.restricted_text import IndexedText, RestrictedRuns

REPO = Path(__file__).resolve().parents[1]
HANDBOOK = REPO / "samples/handbook"
ITEMS = REPO / "tuning/data/handbook-items.jsonl"
DEFAULT_SCIFACT = REPO.parent / "shared/data/beir/scifact/corpus.jsonl"
ALLOWED = frozenset({"everyone"})  # tuning/recipes/handbook-cpu.yaml data.allowed_groups


def handbook_chunks() -> list[IndexedText]:
    policy = AccessPolicy.load(HANDBOOK / "access.yaml")
    chunks = []
    for path in sorted(HANDBOOK.rglob("*")):
        if path.suffix not in {".md", ".txt", ".html", ".pdf", ".docx"}:
            continue
        doc_id = path.relative_to(HANDBOOK).as_posix()
        rule = policy.rule_for(doc_id)
        parsed = parse_document(path.suffix, path.name, path.read_bytes())
        groups = rule.groups if rule is not None else ()
        if parsed.front_matter_groups is not None and rule is not None:
            groups = tuple(g for g in rule.groups if g in parsed.front_matter_groups)
        chunks += [IndexedText(doc_id, section.text, groups) for section in parsed.sections]
    return chunks


def item_texts() -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in ITEMS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(r["id"], "\n".join([r["question"], r.get("answer") or "", *(r.get("quotes") or [])])) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scifact", type=Path, default=DEFAULT_SCIFACT)
    args = parser.parse_args()

    chunks = handbook_chunks()
    started = time.perf_counter()
    restricted = RestrictedRuns.of(chunks, ALLOWED)
    built = time.perf_counter() - started
    items = item_texts()
    started = time.perf_counter()
    hits = [(item_id, restricted.first_source(text)) for item_id, text in items]
    checked = time.perf_counter() - started
    copied = [(item_id, doc) for item_id, doc in hits if doc is not None]
    print(f"handbook: {len(chunks)} sections, {len(restricted):,} restricted 8-word runs, built in {built:.3f} s")
    print(f"  {len(items)} shipped items checked in {checked:.3f} s ({checked / len(items) * 1e3:.2f} ms each)")
    print(f"  items sharing 8 words in a row with a restricted document: {len(copied)}")
    for item_id, doc in copied:
        print(f"    {item_id}: {doc}")

    if not args.scifact.is_file():
        print(f"no SciFact corpus at {args.scifact}: scale figures skipped")
        return
    lines = [json.loads(line) for line in args.scifact.read_text(encoding="utf-8").splitlines() if line.strip()]
    abstracts = [IndexedText(str(r["_id"]), f"{r.get('title') or ''} {r['text']}", ("restricted",)) for r in lines]
    started = time.perf_counter()
    scale = RestrictedRuns.of(abstracts, ALLOWED)
    built = time.perf_counter() - started
    texts = [text for _, text in items]
    started = time.perf_counter()
    for text in texts:
        scale.first_source(text)
    checked = time.perf_counter() - started
    megabytes = len(scale) * (8 + 4) / 1e6  # int64 hash + int32 owner per run
    print(f"scifact: {len(abstracts):,} abstracts, {len(scale):,} runs, built in {built:.2f} s, {megabytes:.0f} MB;")
    print(f"  {len(texts) / checked:,.0f} item checks/s")


if __name__ == "__main__":
    main()
