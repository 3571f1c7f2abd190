"""The evidence scorer: its pairs (quotes positive, the other sentences of the item's and the retrieved chunks
negative, held-out questions and restricted documents left out, one side of the split per question), a tiny real
training run whose folder the runtime loads back, and the record's and recipe's refusals."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from assistant.embedder import resolve_model_path
from assistant.errors import ConfigError
from assistant.evidence import (
    ADAPTER_WEIGHTS,
    EVIDENCE_RECORD,
    EVIDENCE_RECORD_VERSION,
    FULL_WEIGHTS,
    Calibration,
    EvidenceRecord,
    EvidenceScorer,
    block_sentences,
    file_sha256,
    read_evidence_record,
    weights_hash,
)
from assistant.house_format import fold, normalise_space
from assistant.settings import Settings
from tests.conftest import REPO, runtime, stored_chunks
from tuning.check import split_of
from tuning.evidence_data import (
    ANSWER,
    SENTENCE,
    TRAIN,
    VALIDATION,
    Job,
    Pair,
    PairReport,
    answer_pairs,
    collect_pairs,
    held_out_questions,
    read_pairs,
    split_pairs,
    write_pairs,
)
from tuning.evidence_train import (
    EvidenceDataRecipe,
    auc,
    fit_platt,
    load_evidence_recipe,
    train_scorer,
    write_evidence_record,
)
from tuning.items import Item, load_items

HOLIDAYS = "How many paid holidays do regular US employees receive in 2026?"
GOLDEN = json.loads((REPO / "samples/handbook-golden.jsonl").read_text(encoding="utf-8").splitlines()[0])["question"]
PIP = json.loads((REPO / "samples/pip-golden.jsonl").read_text(encoding="utf-8").splitlines()[0])["question"]
RESTRICTED = "engineering/code-review-guidelines.md"


def _items_file(folder: Path) -> Path:
    """Two real curated items (answerable, unanswerable), a handbook golden question, a pip golden question and an
    item over a document only engineering may read."""
    real = {i["id"]: i for i in map(json.loads, (REPO / "tuning/data/handbook-items.jsonl").read_text().splitlines())}
    rows = [
        real["hb-0003"],
        real["hb-0040"],
        real["hb-0286"],
        {"id": "golden", "question": GOLDEN, "kind": "unanswerable"},
        {"id": "pip", "question": PIP, "kind": "unanswerable"},
        {
            "id": "restricted",
            "question": "How many reviewers must approve a change?",
            "answer": "Two.",
            "quotes": ["Two reviewers approve every change."],
            "doc_id": RESTRICTED,
            "kind": "answerable",
        },
    ]
    path = folder / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def built(handbook_index: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Item], PairReport]:
    items = load_items(_items_file(tmp_path_factory.mktemp("evidence-items")), "handbook")
    data = EvidenceDataRecipe(retrieved=3, max_negatives=6, held_out_extra=["samples/pip-golden.jsonl", "nope.jsonl"])
    held_out, read = held_out_questions(REPO, data.held_out_extra)
    assert read == ["samples/pip-golden.jsonl"]  # a missing set is skipped
    with runtime(handbook_index) as components:
        report = collect_pairs(components, [Job("handbook", items)], data, held_out)
    return items, report


def test_pairs_quote_positive_other_sentences_negative_and_no_held_out_question(
    built: tuple[list[Item], PairReport], handbook_index: Settings
) -> None:
    items, report = built
    by_item: dict[str, list[Pair]] = {}
    for pair in report.pairs:
        by_item.setdefault(pair.item, []).append(pair)
    assert set(by_item) == {"hb-0003", "hb-0040", "hb-0286"}
    assert report.excluded["repeats or paraphrases an evaluation question"] == 2  # golden and pip
    assert report.excluded["its document is readable beyond the allowed groups"] == 1
    assert not {GOLDEN, PIP} & {p.question for p in report.pairs}

    chunks = stored_chunks(handbook_index)
    corpus_sentences = {fold(s) for c in chunks for s in block_sentences(c.text)}
    for item in items[:2]:
        pairs = [p for p in by_item[item.id] if p.kind == SENTENCE]
        assert {p.sentence for p in pairs if p.label == 1} == {normalise_space(q) for q in item.quotes}
        negatives = [p for p in pairs if p.label == 0]
        assert 0 < len(negatives) <= 6
        for pair in negatives:
            assert fold(pair.sentence) in corpus_sentences
            assert not any(fold(q) in fold(pair.sentence) or fold(pair.sentence) in fold(q) for q in item.quotes)
        assert any(p.doc_id == item.doc_id for p in negatives)  # a hard negative from the item's own document
        assert len({fold(p.sentence) for p in pairs}) == len(pairs)
        answers = [p for p in by_item[item.id] if p.kind == ANSWER]  # the answer verifier's pairs
        assert [p.sentence for p in answers if p.label == 1] == [item.answer]
        assert all(p.doc_id == item.doc_id and p.groups == pairs[0].groups for p in answers)
    assert by_item["hb-0286"] and all(p.label == 0 for p in by_item["hb-0286"])  # unanswerable: negatives only
    assert all(p.kind == SENTENCE for p in by_item["hb-0286"])  # and no answer to verify
    assert report.data_groups == {"everyone"}
    assert all(p.doc_id != RESTRICTED for p in report.pairs)


def test_answer_pairs_are_the_reference_answer_against_other_answers_and_the_wrong_part_of_a_quote() -> None:
    def item(id_: str, question: str, answer: str, quotes: list[str]) -> Item:
        return Item(id_, question, answer, tuple(quotes), "it/passwords.md", "answerable", "handbook")

    rule = "Minimum length: 14 characters. We recommend a passphrase of four or more random words."
    asked = item("a", "What's the minimum password length?", "14 characters.", [rule])
    same_quote = item("b", "Should I use a passphrase?", "Yes, four or more random words.", [rule])
    other = item("c", "Who owns the policy?", "Marcus Bell, the CISO.", ["The policy is owned by Marcus Bell."])
    positive = Pair(asked.question, rule, 1, "a", "handbook", "it/passwords.md", ("everyone",))
    pairs = answer_pairs(asked, [asked, same_quote, other], positive, EvidenceDataRecipe())
    assert {(p.sentence, p.label) for p in pairs} == {
        ("14 characters.", 1),
        ("We recommend a passphrase of four or more random words.", 0),  # the part of its quote that says else
        ("Marcus Bell, the CISO.", 0),  # another item's answer; "b" shares its quote: it may answer it too
    }
    assert all(p.kind == ANSWER and p.groups == ("everyone",) for p in pairs)


def test_split_keeps_each_question_on_one_side(built: tuple[list[Item], PairReport]) -> None:
    _, report = built
    many = [
        Pair(f"question number {n}?", f"sentence {k}.", k % 2, f"i{n}", "c", "d", ("everyone",))
        for n in range(40)
        for k in range(3)
    ]
    for pairs in (report.pairs, many):
        train, validation = split_pairs(pairs, 0.5)
        assert len(train) + len(validation) == len(pairs)
        assert not {p.question for p in train} & {p.question for p in validation}
        assert all(split_of(p.question, 0.5) == "validation" for p in validation)
    assert train and validation


def test_tiny_training_run_saves_a_scorer_the_runtime_loads(
    built: tuple[list[Item], PairReport], handbook_index: Settings, tmp_path: Path
) -> None:
    _, report = built
    data = tmp_path / "pairs"
    validation = [p for p in report.pairs if p.item == "hb-0040"]
    train = [p for p in report.pairs if p.item != "hb-0040"][:16]
    write_pairs(train, data / TRAIN)
    write_pairs(validation, data / VALIDATION)
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(
        "name: evidence-tiny\ntrain: {max_steps: 2, batch_size: 8, max_length: 48, logging_steps: 1}\n",
        encoding="utf-8",
    )
    out = tmp_path / "scorer"
    record = train_scorer(load_evidence_recipe(recipe), data, out, repo=REPO)

    assert record.training["steps"] == 2 and record.training["seconds"] > 0
    assert record.base_model == "bundled:all-MiniLM-L6-v2"
    assert record.base_model_hash == weights_hash(resolve_model_path(record.base_model))
    assert record.data_files == {
        TRAIN: read_pairs(data / TRAIN).sha256,
        VALIDATION: read_pairs(data / VALIDATION).sha256,
    }
    assert record.data_groups == ("everyone",)
    metrics = record.metrics["validation"]
    sentence_pairs = [p for p in validation if p.kind == SENTENCE]  # the answer pairs have a calibration of their own
    assert record.answer_calibration is None and "answer_validation" not in record.metrics  # one class: no verifier
    assert metrics["pairs"] == len(sentence_pairs) and 0 <= metrics["accuracy"] <= 1 and 0 <= metrics["auc"] <= 1
    assert (out / ADAPTER_WEIGHTS).stat().st_size < 5_000_000  # LoRA + head, not the 90 MB encoder

    scorer = EvidenceScorer.load(out)
    question = validation[0].question
    sentences = [p.sentence for p in validation if p.kind == SENTENCE]
    scores = scorer.score(question, sentences)
    assert len(scores) == len(sentences) and all(0.0 <= s <= 1.0 for s in scores)
    logits = scorer.logits(question, sentences)
    assert scores == [record.calibration.probability(x) for x in logits]
    assert len(set(logits)) > 1  # the model reads its input

    conduct = [c.text for c in stored_chunks(handbook_index) if c.doc_id == "company/code-of-conduct.md"]
    blocks = [*conduct[:2], "Yes."]
    ranked = scorer.rank(question, blocks)
    assert [s.score for s in ranked] == sorted((s.score for s in ranked), reverse=True)
    assert {s.block for s in ranked} <= {1, 2} and ranked  # block 3 holds no quotable sentence
    assert all(s.sentence in block_sentences(blocks[s.block - 1]) for s in ranked)
    assert scorer.answerability(question, blocks) == ranked[0].score
    assert scorer.answer_score(question, "Two reviewers.") is None

    weights = out / ADAPTER_WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    with pytest.raises(ConfigError, match="does not match its record"):
        EvidenceScorer.load(out)


def test_a_scorer_trained_whole_saves_the_model_and_loads_without_the_base_weights(
    built: tuple[list[Item], PairReport], tmp_path: Path
) -> None:
    """`lora: null`: every weight trained (docs/tuning.md: it ranks about as well as the cosine)."""
    _, report = built
    data = tmp_path / "pairs"
    write_pairs([p for p in report.pairs if p.item != "hb-0040"][:8], data / TRAIN)
    validation = [p for p in report.pairs if p.item == "hb-0040"]
    other_answer = dataclasses.replace(validation[0], sentence="Parking is in the north garage.", label=0, kind=ANSWER)
    write_pairs([*validation, other_answer], data / VALIDATION)  # both classes of answer pairs: a verifier
    recipe = tmp_path / "whole.yaml"
    recipe.write_text("name: evidence-whole\nlora: null\ntrain: {max_steps: 1, batch_size: 8, max_length: 48}\n")
    out = tmp_path / "scorer"
    record = train_scorer(load_evidence_recipe(recipe), data, out, repo=REPO)
    assert record.training["trainable_parameters"] > 20_000_000  # the whole MiniLM, not a LoRA
    assert not (out / ADAPTER_WEIGHTS).exists() and record.weights_sha256 == file_sha256(out / FULL_WEIGHTS)
    scorer = EvidenceScorer.load(out)  # train_scorer has checked it reproduces the validation logits
    assert record.answer_calibration is not None and record.metrics["answer_validation"]["pairs"] >= 2
    answer_score = scorer.answer_score("How many reviewers?", "Two.")
    assert scorer.record == record and answer_score is not None and 0.0 < answer_score < 1.0
    moved = dataclasses.replace(record, base_model=str(tmp_path / "gone"))  # the base it started from is gone
    write_evidence_record(moved)
    assert EvidenceScorer.load(out).logits("How many reviewers?", ["Two."]) == scorer.logits(
        "How many reviewers?", ["Two."]
    )


def _record(folder: Path) -> EvidenceRecord:
    return EvidenceRecord(
        id="evidence-test",
        path=folder,
        base_model="bundled:all-MiniLM-L6-v2",
        base_model_hash="0" * 16,
        weights_sha256="0" * 64,
        max_length=64,
        calibration=Calibration(2.0, -1.0),
        data_groups=("everyone",),
    )


def test_record_round_trips_and_a_newer_version_is_refused(tmp_path: Path) -> None:
    verifier = dataclasses.replace(_record(tmp_path / "verifier"), answer_calibration=Calibration(13.3, -6.9))
    assert write_evidence_record(verifier) == verifier
    record = write_evidence_record(_record(tmp_path))
    assert record == _record(tmp_path)
    data = json.loads((tmp_path / EVIDENCE_RECORD).read_text(encoding="utf-8"))
    data["record_version"] = EVIDENCE_RECORD_VERSION + 1
    (tmp_path / EVIDENCE_RECORD).write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ConfigError, match="newer than this assistant reads"):
        read_evidence_record(tmp_path)


def test_a_missing_scorer_says_how_to_train_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"python -m tuning\.evidence_train --recipe tuning/recipes/evidence-cpu"):
        EvidenceScorer.load(tmp_path / "none")
    write_evidence_record(_record(tmp_path))
    with pytest.raises(ConfigError, match="missing"):
        EvidenceScorer.load(tmp_path)


def test_recipe_checks_its_fields(tmp_path: Path) -> None:
    shipped = load_evidence_recipe(REPO / "tuning/recipes/evidence-cpu.yaml")
    assert shipped.base_model == "bundled:all-MiniLM-L6-v2" and shipped.data.scifact
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  learning_rat: 0.1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"train: learning_rat: unknown key.*tuning/evidence_train\.py"):
        load_evidence_recipe(bad)
    with pytest.raises(ConfigError, match=r"data: max_negatives: expected int"):
        load_evidence_recipe(REPO / "tuning/recipes/evidence-cpu.yaml", ["data.max_negatives=many"])


def test_calibration_and_auc() -> None:
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert auc([0.5, 0.5], [0, 1]) == 0.5 and auc([0.2, 0.3], [1, 1]) is None
    # logits drawn so that P(label 1) = sigmoid(2x - 1): the fit recovers the slope and the bias
    logits = [i / 50 - 3 for i in range(300)]
    labels = []
    for x in logits:
        p = 1 / (1 + math.exp(-(2 * x - 1)))
        labels += [1] * round(p * 20)
        labels += [0] * (20 - round(p * 20))
    repeated = [x for x in logits for _ in range(20)]
    fitted = fit_platt(repeated, labels)
    assert abs(fitted.scale - 2) < 0.1 and abs(fitted.bias + 1) < 0.1
    assert fit_platt([1.0, 2.0], [1, 1]) == Calibration()
