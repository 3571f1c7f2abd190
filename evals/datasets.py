"""Evaluation sets: a BEIR directory (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) or a golden JSONL.

Golden JSONL, one question a line: {"question": str, "relevant": [doc ids], "groups": [groups of the asker]};
optional: "answer", the reference answer for answer-quality evaluation; "key_facts", what a correct answer must
state (`evals/key_facts.py`); "follows", the line number of the earlier question of the same conversation, asked
first so that this one is a follow-up. Other fields are ignored. A BEIR
set is asked by a principal in the group `EVAL_GROUP`, the group its corpus is ingested with.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import SourceError

EVAL_GROUP = "eval"


@dataclass(frozen=True)
class EvalQuery:
    qid: str
    text: str
    relevant: dict[str, int]  # doc id -> grade
    groups: tuple[str, ...]
    reference: str | None = None  # a golden set's reference answer ("answer"), for answer-quality evaluation
    verdict: str | None = None  # a claim set's label: SUPPORT, CONTRADICT, or "" (no evidence: refuse)
    key_facts: tuple[str, ...] = ()  # what a correct answer states (evals/key_facts.py); () for none given
    follows: str | None = None  # qid of the earlier question of the same conversation


@dataclass(frozen=True)
class EvalSet:
    name: str
    kind: str  # "beir" or "golden"
    split: str | None
    queries: list[EvalQuery]
    corpus: Path | None  # BEIR corpus.jsonl, ingested into a collection of its own

    @property
    def collection(self) -> str:
        return f"eval-{self.name}"


def load_dataset(path: Path, split: str = "test") -> EvalSet:
    if path.is_dir():
        return load_beir(path, split)
    if path.suffix == ".jsonl":
        return load_golden(path)
    raise SourceError(f"{path}: give a BEIR directory (with corpus.jsonl) or a golden .jsonl file")


def load_beir(root: Path, split: str) -> EvalSet:
    qrels_path = root / "qrels" / f"{split}.tsv"
    for needed in (root / "corpus.jsonl", root / "queries.jsonl", qrels_path):
        if not needed.is_file():
            raise SourceError(f"{needed} is missing; a BEIR directory holds corpus.jsonl, queries.jsonl, qrels/")
    relevant: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            relevant.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    texts = {}
    with (root / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                texts[str(record["_id"])] = str(record["text"])
    queries = [EvalQuery(qid, texts[qid], grades, (EVAL_GROUP,)) for qid, grades in relevant.items() if qid in texts]
    return EvalSet(root.name, "beir", split, queries, root / "corpus.jsonl")


def load_golden(path: Path) -> EvalSet:
    if not path.is_file():
        raise SourceError(f"{path} does not exist; give a golden .jsonl file")
    queries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            question = str(record["question"])
            relevant = {str(doc): 1 for doc in record["relevant"]}
            if not isinstance(record["groups"], list) or not isinstance(record["relevant"], list):
                raise TypeError("'relevant' and 'groups' must be lists")
            groups = tuple(str(g) for g in record["groups"])
            reference = str(record["answer"]) if record.get("answer") else None
            key_facts = record.get("key_facts") or []
            if not isinstance(key_facts, list) or not all(isinstance(f, str) and f.strip() for f in key_facts):
                raise TypeError("'key_facts' must be a list of non-empty strings")
            follows = record.get("follows")
            if follows is not None and (not isinstance(follows, int) or not 1 <= follows < number):
                raise ValueError(f"'follows' must be the line number of an earlier question, not {follows!r}")
        except (ValueError, KeyError, TypeError) as exc:
            raise SourceError(
                f"{path}:{number}: not a golden question ({exc}); each line must be "
                '{"question": str, "relevant": [doc ids], "groups": [groups of the asker], "answer": optional str, '
                '"key_facts": optional [str], "follows": optional line number}'
            ) from exc
        earlier = f"{path.stem}:{follows}" if follows is not None else None
        queries.append(
            EvalQuery(f"{path.stem}:{number}", question, relevant, groups, reference, None, tuple(key_facts), earlier)
        )
    return EvalSet(path.stem, "golden", None, queries, None)


def load_claims(root: Path, split: str, collection_groups: tuple[str, ...], limit: int | None = None) -> EvalSet:
    """SciFact claims of `split` with their verdicts, for answer evaluation: SUPPORT / CONTRADICT from the first
    cited abstract with evidence, "" for claims whose cited abstracts hold none (the answer is a refusal)."""
    base = load_beir(root, split)
    labels: dict[str, str] = {}
    with (root / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            evidence = record.get("metadata") or {}
            labels[str(record["_id"])] = next((r["label"] for rs in evidence.values() for r in rs), "")
    queries = [
        EvalQuery(q.qid, q.text, q.relevant, collection_groups, None, labels.get(q.qid, ""))
        for q in sorted(base.queries, key=lambda q: int(q.qid))[:limit]
    ]
    return EvalSet(f"{root.name}-claims", "beir", split, queries, None)
