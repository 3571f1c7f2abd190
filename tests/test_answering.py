"""The answer pipeline on the sample handbook: real retrieval and recall gate, a tiny `from_config` generator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.access import Principal
from assistant.answering import REFUSAL, Answer, Answerer, check_citations
from assistant.generator import Generator
from assistant.prompt import Turn
from assistant.retriever import RetrievedChunk
from assistant.settings import GeneratorSettings, Settings
from tests.conftest import runtime


def chunk(n: int, text: str) -> RetrievedChunk:
    return RetrievedChunk(n, 1.0, f"c{n}", f"doc{n}", f"Doc {n}", f"doc{n}.md", None, ("everyone",), text)


def test_citations_to_no_block_are_removed_and_counted() -> None:
    blocks = [chunk(1, "Birth parents get 20 weeks of paid leave."), chunk(2, "Holidays are ten days.")]
    checked = check_citations("Twenty weeks [1]. Ten days [2][2]. Also [7] and [0].", blocks)
    assert checked.cited == [1, 2]
    assert checked.removed == 2
    assert "[7]" not in checked.text and "[0]" not in checked.text and checked.text.endswith("Also and.")


def test_quotes_are_checked_against_the_cited_blocks() -> None:
    blocks = [chunk(1, "Birth parents get 20 weeks of paid leave.")]
    good = check_citations('The policy says "birth parents get 20 weeks of paid leave" [1].', blocks)
    bad = check_citations('The policy says "everyone gets a pony and a boat" [1].', blocks)
    assert good.unsupported_quotes == []
    assert bad.unsupported_quotes == ["everyone gets a pony and a boat"]


@pytest.fixture
def answerer(handbook_index: Settings, tiny_model: Path, tmp_path: Path) -> Iterator[Answerer]:
    generator = Generator(GeneratorSettings(model=str(tiny_model), device="cpu", max_new_tokens=8), tmp_path)
    with runtime(handbook_index, generator=generator) as components:
        yield Answerer(components.retriever(), components.recall_gate, generator)


def test_refuses_without_generating_when_nothing_approved_supports_an_answer(answerer: Answerer) -> None:
    for principal, question in (
        (Principal.of("victor", []), "How many floating holidays do I get each year?"),
        (Principal.of("dana", ["everyone"]), "What's the wifi password at the Lisbon office?"),
        (Principal.of("dana", ["everyone"]), "What is the pay range for a Senior Engineer (E3) in Boston?"),
    ):
        answer = answerer.ask(principal, question)
        assert answer.refused and answer.answer == REFUSAL
        assert answer.completion_tokens == 0 and answer.model is None and answer.citations == []


def test_answers_stream_and_sources_are_only_readable_chunks(answerer: Answerer) -> None:
    dana = Principal.of("dana", ["everyone"])
    items = list(answerer.stream(dana, "How many floating holidays do I get each year?"))
    final = items[-1]
    assert isinstance(final, Answer) and not final.refused
    assert all(isinstance(piece, str) for piece in items[:-1])
    assert final.retrieved and all("everyone" in c.groups for c in final.retrieved)
    assert {c.doc_id for c in final.citations} <= {c.doc_id for c in final.retrieved}
    assert final.prompt_tokens > 100 and final.completion_tokens > 0
    assert final.model and final.adapter is None


def test_follow_up_is_retrieved_with_the_previous_question(answerer: Answerer) -> None:
    hannah = Principal.of("hannah", ["everyone", "hr"])
    history = [Turn("How much parental leave do birthing parents get?", "Twenty weeks [1].")]
    answer = answerer.ask(hannah, "And how much for the other parent?", history)
    assert not answer.refused
    assert answer.retrieved[0].doc_id == "hr/parental-leave.md"
