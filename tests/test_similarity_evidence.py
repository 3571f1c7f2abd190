"""The zero-shot evidence scorer: calibrated MiniLM cosines, its record, and how the runtime finds it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from assistant.errors import ConfigError
from assistant.evidence import Calibration, line_context, rank_sentences
from assistant.settings import EvidenceSettings, Settings, load_settings
from assistant.similarity_evidence import (
    RECORD,
    SHIPPED_SIMILARITY,
    SimilarityRecord,
    SimilarityScorer,
    rare_term_share,
    read_similarity_record,
    write_similarity_record,
)
from tests.conftest import runtime

QUESTION = "How many floating holidays do I get each year?"
BLOCKS = [
    "Parking is in the north garage. Bikes go in the basement rack.",
    "Employees get two floating holidays per calendar year. Unused floating holidays expire on December 31.",
]


def record(embedder: str = "bundled:all-MiniLM-L6-v2", answers: Calibration | None = None) -> SimilarityRecord:
    return SimilarityRecord(embedder, Calibration(5.8, -2.3), answers, {"validation_top_sentence_answers": 0.7})


def test_the_record_round_trips_and_a_newer_version_is_refused(tmp_path: Path) -> None:
    verifier = record(answers=Calibration(13.3, -6.9))
    assert write_similarity_record(tmp_path / "verifier", verifier) == verifier
    assert write_similarity_record(tmp_path, record()) == record()
    data = json.loads((tmp_path / RECORD).read_text())
    (tmp_path / RECORD).write_text(json.dumps({**data, "version": 9}))
    with pytest.raises(ConfigError, match="version 9 is newer"):
        read_similarity_record(tmp_path)
    with pytest.raises(ConfigError, match="is missing: fit one with `assistant tune similarity-evidence"):
        read_similarity_record(tmp_path / "none")


def test_the_answering_sentence_ranks_first_and_scores_are_probabilities(settings: Settings) -> None:
    with runtime(settings) as components:
        scorer = SimilarityScorer(record(), components.embedder)
        ranked = scorer.rank(QUESTION, BLOCKS)
    assert ranked[0].sentence == "Employees get two floating holidays per calendar year." and ranked[0].block == 2
    assert all(0.0 < s.score < 1.0 for s in ranked)
    assert ranked[0].score > max(s.score for s in ranked if s.block == 1)


def test_the_answer_verifier_scores_an_answer_line_that_answers_above_one_that_says_something_else(
    settings: Settings,
) -> None:
    with runtime(settings) as components:
        assert SimilarityScorer(record(), components.embedder).answer_score(QUESTION, "Two a year.") is None
        verifier = SimilarityScorer(record(answers=Calibration(13.3, -6.9)), components.embedder)
        answers = verifier.answer_score(QUESTION, "Every employee gets two floating holidays per calendar year.")
        other = verifier.answer_score(QUESTION, "Bikes go in the basement rack.")
        assert verifier.answer_score(QUESTION, "  ") is None
    assert answers is not None and other is not None and 0.0 < other < 0.5 < answers < 1.0


def test_the_runtime_uses_a_configured_folder_and_refuses_one_fitted_for_another_embedder(
    settings: Settings, tmp_path: Path
) -> None:
    write_similarity_record(tmp_path / "mine", record())
    configured = load_settings(data_dir=settings.data_dir, evidence={"scorer": tmp_path / "mine"})
    with runtime(configured) as components:
        assert isinstance(components.evidence, SimilarityScorer)
    write_similarity_record(tmp_path / "other", record("bundled:other-model"))
    other = load_settings(data_dir=settings.data_dir, evidence={"scorer": tmp_path / "other"})
    with runtime(other) as components, pytest.raises(ConfigError, match="fitted with embedder bundled:other-model"):
        components.evidence  # noqa: B018
    with runtime(load_settings(data_dir=settings.data_dir)) as components:  # unset: the shipped one, for everyone
        shipped = components.evidence
        assert isinstance(shipped, SimilarityScorer) and shipped.record == read_similarity_record(SHIPPED_SIMILARITY)
    empty = load_settings(data_dir=settings.data_dir, evidence={"scorer": tmp_path})
    with runtime(empty) as components, pytest.raises(ConfigError, match=r"holds neither evidence\.json nor"):
        components.evidence  # noqa: B018


def test_a_rare_term_of_the_question_and_the_heading_rank_the_sentence_that_holds_them(settings: Settings) -> None:
    """Two sentences alike but for the region: asked the EU rate, the EU sentence ranks first, by its heading and
    by "EUR" (rare among the candidates), where the bare cosine could rank either."""
    question = "what's the per diem in the EU, in EUR?"
    blocks = [
        "Meals on US trips are paid at $70 per full travel day.",
        "Meals on trips are paid at EUR 62 per full travel day.",
    ]
    headings = ["Travel > United States", "Travel > European Union"]
    with runtime(settings) as components:
        plain = SimilarityScorer(record(), components.embedder, components.bm25, EvidenceSettings(term_weight=0))
        shares = rare_term_share(components.bm25, question, blocks)
        ranked = SimilarityScorer(record(), components.embedder, components.bm25).rank(question, blocks, headings)
        figures = plain.ranking_figures(question, list(zip(headings, blocks, strict=True)))
        bare = plain.ranking_figures(question, [("", b) for b in blocks])
    assert shares[1] > 3 * shares[0]  # "eur" is in the second sentence only; both hold the common words
    assert ranked[0].block == 2
    assert figures[1] - figures[0] > bare[1] - bare[0]  # the heading moves the EU sentence up
    assert all(0.0 < s.score < 1.0 for s in ranked)  # still calibrated probabilities


def test_a_table_row_is_ranked_under_its_header_row_and_a_list_item_under_its_lead_in() -> None:
    """What orders the sentences reads each one with its block's heading, and a table row with its table's header
    row ("EU | EUR 62" alone does not say it is a per diem), a list item with the line introducing its list."""
    block = (
        "Meals are paid per full travel day:\n\n"
        "- Half days are paid at 75%.\n\n"
        "| Region | Per diem |\n|---|---|\n| EU | EUR 62 |\n| US | $70 |\n\n"
        "Receipts are not needed for meals."
    )
    seen: dict[str, str] = {}

    def order(question: str, pairs: Sequence[tuple[str, str]]) -> list[float]:
        seen.update((sentence, heading) for heading, sentence in pairs)
        return [0.0] * len(pairs)

    rank_sentences(lambda q, s: [0.5] * len(s), "EU per diem?", [block], order=order, headings=["Travel > Meals"])
    assert seen["| EU | EUR 62 |"] == "Travel > Meals | Region | Per diem |"
    assert seen["- Half days are paid at 75%."] == "Travel > Meals Meals are paid per full travel day:"
    assert seen["Receipts are not needed for meals."] == "Travel > Meals"  # after the table: no context of its own
    assert line_context("| a | b |\n| c | d |") == {}  # no separator row: no header, nothing assumed
