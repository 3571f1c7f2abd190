"""Training lines are checked by their words, not only by the sources they declare: 8 words in a row copied from a
document the recipe's allowed groups may not read refuse the line, naming the document and never its text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.errors import ConfigError
from assistant.settings import Settings
from tuning.provenance import IndexGroups, LineRefused, SourcePolicy, read_example_file
from tuning.restricted_text import IndexedText, RestrictedRuns, RestrictedText

SALARY = "Band 4 engineers are paid between 118,000 and 142,000 dollars a year before bonus."
HOLIDAYS = "The office is closed on New Year's Day and on the Monday after Easter."
BOILERPLATE = "Questions about this page go to the People team at people@northwind.example today."
CHUNKS = {
    "handbook": [
        IndexedText("hr/salary-bands.md", f"{SALARY} {BOILERPLATE}", ("hr-compensation",)),
        IndexedText("company/holidays.md", f"{HOLIDAYS} {BOILERPLATE}", ("everyone",)),
        IndexedText("drafts/memo.md", "A draft nobody may read yet, with no access rule at all.", ()),
    ]
}


def test_a_restricted_run_is_found_and_public_boilerplate_is_not() -> None:
    restricted = RestrictedRuns.of(CHUNKS["handbook"], frozenset({"everyone"}))
    assert restricted.first_source(f"Q: pay? A: {SALARY}") == "hr/salary-bands.md"
    assert restricted.first_source("band 4 ENGINEERS are paid between 118,000 and 142,000") == "hr/salary-bands.md"
    assert restricted.first_source("engineers are paid between 118,000 and 142,000 dollars") == "hr/salary-bands.md"
    assert restricted.first_source("are paid between 118,000 and 142,000 dollars") is None  # 7 words: not a copy
    assert restricted.first_source(BOILERPLATE) is None  # the public page holds it too
    assert restricted.first_source(HOLIDAYS) is None
    assert restricted.first_source("A draft nobody may read yet, with no access rule") == "drafts/memo.md"  # no groups
    everyone_and_pay = RestrictedRuns.of(CHUNKS["handbook"], frozenset({"everyone", "hr-compensation"}))
    assert everyone_and_pay.first_source(SALARY) is None


def write_lines(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_a_curated_line_carrying_restricted_text_is_refused_naming_the_document_only(tmp_path: Path) -> None:
    index = IndexGroups(lambda collection: {c.doc_id: c.groups for c in CHUNKS[collection]})
    text = RestrictedText(CHUNKS, frozenset({"everyone"}))
    policy = SourcePolicy(index, frozenset({"everyone"}), text, ("handbook",))
    public = [{"collection": "handbook", "doc_id": "company/holidays.md", "groups": ["everyone"]}]
    lines = [
        {"prompt": "When is the office closed?", "completion": HOLIDAYS, "sources": public},
        {"prompt": "What does band 4 pay?", "completion": SALARY, "sources": [], "curated": True},
        {"prompt": "When is the office closed?", "completion": f"{HOLIDAYS} {SALARY}", "sources": public},
    ]
    assert policy.groups_of(lines[0]) == frozenset({"everyone"})
    for line in lines[1:]:
        with pytest.raises(LineRefused) as refused:
            policy.groups_of(line)
        assert refused.value.code == "restricted-text"
        assert "handbook:hr/salary-bands.md" in str(refused.value) and "118,000" not in str(refused.value)
    with pytest.raises(ConfigError, match=r"train.jsonl:2: the line shares 8 or more words in a row with handbook:"):
        read_example_file(write_lines(tmp_path / "train.jsonl", lines), policy)


def test_tune_check_refuses_a_curated_line_pasting_a_restricted_sentence_from_the_real_index(
    tmp_path: Path, tiny_model: Path, handbook_index: Settings
) -> None:
    import shutil

    from tests.conftest import run

    data = tmp_path / "data"  # a copy: the session's index is only read
    shutil.copytree(handbook_index.data_dir, data, ignore=shutil.ignore_patterns("models"))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"base_model: {tiny_model}\ndata:\n  allowed_groups: [everyone]\n  sources:\n"
        "    - {items: tuning/data/handbook-items.jsonl, corpus: samples/handbook, collection: handbook}\n",
        encoding="utf-8",
    )
    pasted = "Offers above the midpoint need approval from the Head of Total Rewards"  # hr/salary-bands.md
    lines = [
        {
            "prompt": "Question: Who approves a high offer?\nAnswer:",
            "completion": f" {pasted}.",
            "sources": [],
            "curated": True,
        },
        {
            "prompt": "Question: Where do the llamas sleep?\nAnswer:",
            "completion": " In the barn.",
            "sources": [],
            "curated": True,
        },
    ]
    result = run(
        "tune", "check", str(write_lines(tmp_path / "train.jsonl", lines)), "--recipe", str(recipe), data_dir=data
    )
    shown = result.stdout + result.stderr
    assert result.returncode == 1, shown
    assert (
        f"{tmp_path / 'train.jsonl'}:1: restricted-text: the line shares 8 or more words in a row with "
        "handbook:hr/salary-bands.md" in " ".join(shown.split())
    )
    assert ":2:" not in shown and "Total Rewards" not in shown  # the document is named, its text never shown
