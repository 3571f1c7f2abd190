"""Reviewed question/answer items: the raw material of the adapter's training data.

An item is a question, a reference answer, the sentence(s) of one document that support it (verbatim) and that
document's id, or a question no document answers (`kind: unanswerable`). Two sources produce them:

- curated JSONL kept in the repository (`tuning/data/handbook-items.jsonl`, written over the sample handbook);
- SciFact's train split: a claim, the verdict its cited abstract gives (SUPPORT / CONTRADICT) and the rationale
  sentences; a claim whose cited abstract holds no evidence is one the documents do not answer. The test split is
  held out for evaluation and is refused here.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from assistant.errors import SourceError

Kind = Literal["answerable", "unanswerable"]
SUPPORTS = "The evidence supports the claim."
CONTRADICTS = "The evidence contradicts the claim."


@dataclass(frozen=True)
class Item:
    id: str
    question: str
    answer: str  # plain words, no citations; "" for an unanswerable item
    quotes: tuple[str, ...]  # verbatim sentences of `doc_id` that support the answer
    doc_id: str | None
    kind: Kind
    source: str  # "handbook", "scifact", ...: which corpus (and collection) the item belongs to

    @property
    def answerable(self) -> bool:
        return self.kind == "answerable"


def load_items(path: Path, source: str) -> list[Item]:
    """Curated items, one JSON object a line; every problem names the file and line."""
    if not path.is_file():
        raise SourceError(f"{path} does not exist; give a curated items .jsonl")
    items: list[Item] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = _item(json.loads(line), source)
        except (ValueError, KeyError, TypeError) as exc:
            raise SourceError(f"{path}:{number}: not a curated item ({exc})") from exc
        if item.id in seen:
            raise SourceError(f"{path}:{number}: id {item.id!r} is used twice; ids must be unique")
        seen.add(item.id)
        items.append(item)
    return items


def _item(record: dict[str, Any], source: str) -> Item:
    kind = record["kind"]
    if kind not in ("answerable", "unanswerable"):
        raise ValueError(f"kind must be answerable or unanswerable, not {kind!r}")
    quotes = tuple(str(q) for q in record.get("quotes") or ())
    answer = str(record.get("answer") or "")
    doc_id = record.get("doc_id")
    if kind == "answerable" and not (answer and quotes and doc_id):
        raise ValueError("an answerable item needs 'answer', 'quotes' and 'doc_id'")
    if kind == "unanswerable" and (quotes or doc_id):
        raise ValueError("an unanswerable item has no 'quotes' and no 'doc_id'")
    question = str(record["question"]).strip()
    if not question:
        raise ValueError("'question' is empty")
    return Item(str(record["id"]), question, answer, quotes, doc_id, kind, source)


def scifact_items(root: Path, split: str = "train") -> list[Item]:
    """SciFact claims of `split` as items: the first cited abstract with evidence gives the verdict and the quotes;
    claims whose cited abstracts hold no evidence are unanswerable."""
    if split == "test":
        raise SourceError("SciFact's test split is held out for evaluation; build training data from 'train'")
    qrels = root / "qrels" / f"{split}.tsv"
    if not qrels.is_file():
        raise SourceError(f"{qrels} is missing; point at a BEIR SciFact directory")
    cited: dict[str, list[str]] = {}
    with qrels.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            cited.setdefault(row["query-id"], []).append(row["corpus-id"])
    sentences: dict[str, list[str]] = {}
    with (root / "corpus_sentences.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            sentences[str(record["_id"])] = [str(s) for s in record["sentences"]]
    items = []
    with (root / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            claim = json.loads(line)
            qid = str(claim["_id"])
            if qid not in cited:
                continue
            evidence = claim.get("metadata") or {}
            item = Item(f"scifact-{qid}", str(claim["text"]), "", (), None, "unanswerable", "scifact")
            for doc_id in cited[qid]:
                for rationale in evidence.get(doc_id, []):
                    verdict = SUPPORTS if rationale["label"] == "SUPPORT" else CONTRADICTS
                    quotes = tuple(sentences[doc_id][i].strip() for i in rationale["sentences"])
                    item = Item(item.id, item.question, verdict, quotes, doc_id, "answerable", "scifact")
                    break
                if item.answerable:
                    break
            items.append(item)
    return items
