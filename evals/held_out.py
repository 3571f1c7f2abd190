"""Held-out evaluation questions: no training example may repeat or paraphrase one (`assistant tune check`,
`tune build-data`, `review train`). The sets are the handbook golden and out-of-corpus sets, the questions on the
pip documentation (a corpus the product never trains on: `samples/pip-docs.md`) and SciFact's test claims;
questions are compared as word sets (Jaccard)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.settings import SAMPLE_GOLDEN, SAMPLE_OUT_OF_CORPUS

if TYPE_CHECKING:
    from evals.near_duplicates import NearDuplicates

NEAR_DUPLICATE = 0.85  # word-set Jaccard between two training questions
EVAL_OVERLAP = 0.6  # word-set Jaccard between a training question and an evaluation question (stricter)
_WORD = re.compile(r"[a-z0-9]+")
PIP_GOLDEN = Path("samples/pip-golden.jsonl")
PIP_UNANSWERABLE = Path("samples/pip-unanswerable.jsonl")
EVAL_SETS = (SAMPLE_GOLDEN, SAMPLE_OUT_OF_CORPUS, PIP_GOLDEN, PIP_UNANSWERABLE)
SCIFACT_TEST = ("../shared/data/beir/scifact/queries.jsonl", "../shared/data/beir/scifact/qrels/test.tsv")


def words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def evaluation_questions(repo: Path) -> list[tuple[str, str]]:
    """(where, question) of every held-out evaluation question this repository knows."""
    found = []
    for name in EVAL_SETS:
        path = repo / name
        if path.is_file():
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if line.strip():
                    found.append((f"{name}:{number}", str(json.loads(line)["question"])))
    queries, qrels = (repo / p for p in SCIFACT_TEST)
    if queries.is_file() and qrels.is_file():
        test_ids = {row.split("\t")[0] for row in qrels.read_text(encoding="utf-8").splitlines()[1:] if row}
        for line in queries.read_text(encoding="utf-8").splitlines():
            claim = json.loads(line)
            if str(claim["_id"]) in test_ids:
                found.append((f"scifact test claim {claim['_id']}", str(claim["text"])))
    return found


def eval_overlap(question: str, held_out: list[tuple[str, frozenset[str]]]) -> str | None:
    """Where `question` repeats or paraphrases an evaluation question, if it does."""
    mine = words(question)
    for where, theirs in held_out:
        if jaccard(mine, theirs) >= EVAL_OVERLAP:
            return where
    return None


def held_out_index(repo: Path) -> list[tuple[str, frozenset[str]]]:
    return [(where, words(q)) for where, q in evaluation_questions(repo)]


REPEATS_HELD_OUT = "repeats or paraphrases an evaluation question"
NEAR_DUPLICATE_ITEM = "near duplicate of another item's question"


def training_exclusion(
    question: str, held_out: list[tuple[str, frozenset[str]]], kept: NearDuplicates | None = None
) -> tuple[str, str] | None:
    """Why a training question must be left out (reason, detail), or None: it repeats or paraphrases a held-out
    question, or near-duplicates one already kept (`kept`: the word sets of the questions kept so far)."""
    overlap = eval_overlap(question, held_out)
    if overlap is not None:
        return REPEATS_HELD_OUT, overlap
    if kept is not None and kept.matches(words(question)):
        return NEAR_DUPLICATE_ITEM, ""
    return None
