"""The evidence scorer in the answer pipeline: it orders the blocks the model sees, picks the sentences it may
quote, refuses when no sentence answers, and a supported label needs a quote it scores as answering."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from assistant.access import Principal
from assistant.answering import Answerer, Prepared
from assistant.evidence import EvidenceScorer, EvidenceSelection, ScoredSentence
from assistant.generator import Generator
from assistant.recall_gate import RecallGate
from assistant.retriever import RetrievedChunk
from assistant.settings import EvidenceSettings, GeneratorSettings, Settings
from tests.conftest import REPO, runtime
from tuning.evidence_data import TRAIN, VALIDATION, Pair, write_pairs
from tuning.evidence_train import load_evidence_recipe, train_scorer

DANA = Principal.of("dana", ["everyone"])


def chunk(rank: int, text: str) -> RetrievedChunk:
    return RetrievedChunk(
        rank, 1 / rank, f"c{rank}", f"d{rank}.md", f"Doc {rank}", f"d{rank}.md", None, ("everyone",), text
    )


def test_blocks_are_shown_best_sentence_first_and_only_the_best_sentences_are_quotable() -> None:
    chunks = [chunk(1, "a"), chunk(2, "b"), chunk(3, "c")]
    ranked = [
        ScoredSentence(3, "Block three answers it.", 0.9),
        ScoredSentence(1, "Block one half answers it.", 0.6),
        ScoredSentence(3, "Block three says more.", 0.4),
        ScoredSentence(2, "Block two is beside the point.", 0.1),
    ]
    selection = EvidenceSelection.of(ranked, chunks, lambda blocks: blocks[:2], EvidenceSettings(quote_top=2))
    assert [b.rank for b in selection.blocks] == [3, 1]  # reordered, then cut to what the adapter sees
    assert selection.preferred_quotes == {1: {"Block three answers it."}, 2: {"Block one half answers it."}}
    assert selection.answerable and selection.score_of("Block three says more.") == 0.4
    assert selection.ranks_first("block three answers it.") and not selection.ranks_first("Block three says more.")
    assert not EvidenceSelection.of(ranked, chunks, list, EvidenceSettings(min_score=0.95)).answerable


def test_a_focused_block_is_cut_to_the_sentences_it_may_quote_first() -> None:
    text = "Block three answers it. Block three says more. Block three answers it."
    chunks = [chunk(1, "Block one half answers it. Then something else entirely."), chunk(2, "b"), chunk(3, text)]
    ranked = [
        ScoredSentence(3, "Block three answers it.", 0.9),
        ScoredSentence(1, "Block one half answers it.", 0.6),
        ScoredSentence(3, "Block three says more.", 0.4),
    ]
    selection = EvidenceSelection.of(ranked, chunks, list, EvidenceSettings(quote_top=2))
    assert selection.focused_text(1, text) == "Block three answers it."  # once, though the block says it twice
    assert selection.focused_text(2, chunks[0].text) == "Block one half answers it."
    assert selection.focused_text(3, "b") == ""  # a block holding none of the best sentences


@pytest.fixture(scope="module")
def scorer(tmp_path_factory: pytest.TempPathFactory) -> EvidenceScorer:
    """A scorer trained for two steps on a few pairs: the pipeline's plumbing, not its quality (the shipped
    scorer's figures are in docs/tuning.md)."""
    folder = tmp_path_factory.mktemp("evidence")
    question = "How many floating holidays do I get each year?"
    sentences = [("Employees get two floating holidays per calendar year.", 1), ("Parking is in the garage.", 0)]
    pairs = [
        Pair(question, text, label, "t-1", "handbook", "company/holidays.md", ("everyone",))
        for text, label in sentences
    ]
    write_pairs(pairs * 4, folder / "pairs" / TRAIN)
    write_pairs(pairs, folder / "pairs" / VALIDATION)
    recipe = folder / "tiny.yaml"
    recipe.write_text("name: evidence-tiny\ntrain: {max_steps: 2, batch_size: 4, max_length: 48}\n", encoding="utf-8")
    train_scorer(load_evidence_recipe(recipe), folder / "pairs", folder / "scorer", repo=REPO)
    return EvidenceScorer.load(folder / "scorer")


Build = Callable[[EvidenceSettings], Answerer]


@pytest.fixture
def answerer_with(
    handbook_index: Settings, tiny_model: Path, tmp_path: Path, scorer: EvidenceScorer
) -> Iterator[Build]:
    generator = Generator(GeneratorSettings(model=str(tiny_model), device="cpu", max_new_tokens=8), tmp_path)
    with runtime(handbook_index, generator=generator) as components:
        yield lambda settings: Answerer(
            components.retriever(), components.recall_gate, generator, evidence=scorer, evidence_settings=settings
        )


def test_no_sentence_scoring_as_an_answer_is_a_refusal_before_generation(answerer_with: Build) -> None:
    strict = answerer_with(EvidenceSettings(min_score=1.0, refuse=True))
    answer = strict.ask(DANA, "How many floating holidays do I get each year?")
    assert answer.outcome == "refused-evidence" and not answer.generated and answer.completion_tokens == 0
    lenient = answerer_with(EvidenceSettings(min_score=0.0, refuse=True))
    assert lenient.ask(DANA, "How many floating holidays do I get each year?").outcome != "refused-evidence"
    labelling_only = answerer_with(EvidenceSettings(min_score=1.0))  # the default: the scorer does not refuse
    assert labelling_only.ask(DANA, "How many floating holidays do I get each year?").outcome != "refused-evidence"


def test_an_answer_line_that_does_not_verify_is_mended_from_the_shown_sentences(answerer_with: Build) -> None:
    """The tiny model writes 8 tokens of nothing in particular: the line says no more than the sentence ranked first,
    which is quoted and verified; with extract_unverified off, the model's text stands."""
    question = "How many floating holidays do I get each year?"
    kept = answerer_with(EvidenceSettings(extract_unverified=False)).ask(DANA, question)
    assert not kept.refused and kept.label != "supported" and not kept.mended
    mended = answerer_with(EvidenceSettings()).ask(DANA, question)
    assert mended.mended and mended.quotes[0].verified
    first = mended.quotes[0].text
    assert first in mended.retrieved[mended.quotes[0].block - 1].text
    assert mended.statement.replace(" [1]", "").rstrip(".") == first.rstrip(".")


def test_the_recall_gate_never_refuses_what_the_evidence_scorer_accepts_first(
    handbook_index: Settings, tiny_model: Path, tmp_path: Path, scorer: EvidenceScorer
) -> None:
    """A gate set above any evidence refuses the question, unless the sentence ranked first reaches min_score
    (min_score 0: always; 1: never), and with defer_to_evidence off it refuses whatever the scorer says."""
    generator = Generator(GeneratorSettings(model=str(tiny_model), device="cpu", max_new_tokens=8), tmp_path)
    question = "how many floating hols do i get"
    with runtime(handbook_index, generator=generator) as components:
        gate = components.recall_gate

        def prepared(min_score: float, defer: bool) -> Prepared:
            settings = gate.settings.model_copy(update={"min_evidence": 5.0, "defer_to_evidence": defer})
            answerer = Answerer(
                components.retriever(),
                RecallGate(settings, gate.bm25),
                generator,
                evidence=scorer,
                evidence_settings=EvidenceSettings(min_score=min_score),
            )
            return answerer.prepare(DANA, question)

        accepted = prepared(0.0, defer=True)
        assert accepted.refusal is None and accepted.recall.vouched and accepted.recall.answerable
        assert prepared(1.0, defer=True).refusal == "refused-recall"
        assert prepared(0.0, defer=False).refusal == "refused-recall"
