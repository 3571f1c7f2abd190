"""Key facts decide whether an answer is right: the matching is mechanical, and every fact of the held-out sets
can be found in the documents its question names (else no answer could ever be counted correct). The everyday
development set (`samples/handbook-everyday-dev.jsonl`) meets the same bar, and rewords training items only: none
of its questions repeats or paraphrases a held-out question."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.held_out import eval_overlap, held_out_index
from evals.key_facts import VERDICTS, fact_found, facts_found, words
from ingestion.access_policy import POLICY_FILE, AccessPolicy, narrow
from ingestion.readers import parse_document
from tests.conftest import HANDBOOK, REPO

SETS = {"samples/handbook-golden.jsonl": "samples/handbook", "samples/pip-golden.jsonl": "samples/pip-docs"}
DEV_SET = "samples/handbook-everyday-dev.jsonl"
TRAINING_ITEMS = "tuning/data/handbook-items.jsonl"
DEV_STYLES = {"typo", "slang", "abbreviation", "lowercase", "fragment", "mixed"}


def test_text_is_normalised_as_documented() -> None:
    assert words("Up to $1,800 per year (3.5%)!") == ["up", "to", "$1800", "per", "year", "3.5%"]
    assert words("pip install --no-cache-dir") == ["pip", "install", "no", "cache", "dir"]


@pytest.mark.parametrize(
    ("fact", "answer", "quotes", "found"),
    [
        ("18 days | eighteen days", "You get eighteen days a year [1].", [], True),
        ("18 days", "You get 18 working days [1].", [], False),  # words must be adjacent
        ("$1,800", "Each employee has $1800 [2].", [], True),
        ("$75", "Gifts up to $750 are fine.", [], False),  # whole words only
        ("--no-cache-dir", "Pass the option [1].", ["Use pip install --no-cache-dir to disable it."], True),
        ("no", "No, receipts start at $25 [1].", [], True),
        ("no", "Receipts are not needed: no [1].", [], False),  # a verdict is the answer's first word
        ("yes", "No [1].", ["Yes, you may."], False),  # and never a quote's
        ("December 31", "They expire on Dec. 31 [1].", [], False),
    ],
)
def test_a_fact_matches_its_words_in_order_in_the_answer_or_a_quote(
    fact: str, answer: str, quotes: list[str], found: bool
) -> None:
    assert fact_found(fact, answer, quotes) is found


def test_a_fact_does_not_straddle_the_answer_and_a_quote() -> None:
    assert facts_found(["10 days"], "Report it within 10", ["days of the trip."]) == [False]


@pytest.mark.parametrize("golden", sorted(SETS))
def test_every_key_fact_of_the_held_out_sets_is_in_a_document_its_question_names(golden: str) -> None:
    corpus = REPO / SETS[golden]
    lines = (REPO / golden).read_text(encoding="utf-8").splitlines()
    missing = []
    for number, line in enumerate(lines, start=1):
        item = json.loads(line)
        assert item.get("key_facts"), f"{golden}:{number} has no key facts"
        texts = [_text(corpus / doc) for doc in item["relevant"]]
        for fact in item["key_facts"]:
            if fact.strip() in ("yes", "no"):
                continue
            if not any(fact_found(fact, text) for text in texts):
                missing.append(f"{golden}:{number} {fact!r}")
    assert not missing


def _text(path: Path) -> str:
    parsed = parse_document(path.suffix, path.name, path.read_bytes())
    return "\n".join(section.text for section in parsed.sections)


def test_the_everyday_dev_set_rewords_answerable_training_items_with_facts_its_askers_can_read() -> None:
    items = {}
    for line in (REPO / TRAINING_ITEMS).read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            items[item["id"]] = item
    policy = AccessPolicy.load(HANDBOOK / POLICY_FILE)
    held_out = held_out_index(REPO)
    documents: dict[str, tuple[str, tuple[str, ...]]] = {}  # doc id -> (text, groups that may read it)
    lines = (REPO / DEV_SET).read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 100
    problems = []
    for number, line in enumerate(lines, start=1):
        row, where = json.loads(line), f"{DEV_SET}:{number}"
        item = items.get(row["source_item"])
        if item is None or item["kind"] != "answerable":
            problems.append(f"{where}: {row['source_item']!r} is no answerable training item")
            continue
        if row["relevant"] != [item["doc_id"]] or row["style"] not in DEV_STYLES:
            problems.append(f"{where}: relevant or style")
        doc_id = item["doc_id"]
        if doc_id not in documents:
            path = HANDBOOK / doc_id
            parsed = parse_document(path.suffix, path.name, path.read_bytes())
            rule = policy.rule_for(doc_id)
            readers = narrow(rule, parsed.front_matter_groups, doc_id) if rule else ()
            documents[doc_id] = ("\n".join(section.text for section in parsed.sections), readers)
        text, readers = documents[doc_id]
        if not set(row["groups"]) & set(readers):
            problems.append(f"{where}: groups {row['groups']} may not read {doc_id}")
        if not 1 <= len(row["key_facts"]) <= 3:
            problems.append(f"{where}: {len(row['key_facts'])} key facts")
        for fact in row["key_facts"]:
            if fact.strip() not in VERDICTS and not fact_found(fact, text):
                problems.append(f"{where}: {fact!r} not in {doc_id}")
        overlap = eval_overlap(row["question"], held_out)
        if overlap is not None:
            problems.append(f"{where}: repeats or paraphrases the held-out question {overlap}")
    assert not problems
