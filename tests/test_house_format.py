"""The house format has one idea of a sentence: what `render_answer` writes (training targets), the citation check
reads back as the same sentences, each cited, with the same statement and quotes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assistant.citation_check import check_citations
from assistant.house_format import (
    CITATION,
    is_house_format,
    normalise_space,
    parse_answer,
    render_answer,
    split_sentences,
    without_emphasis,
)
from assistant.retriever import RetrievedChunk
from tuning.items import load_items

REPO = Path(__file__).resolve().parents[1]
CURATED = sorted((REPO / "tuning" / "data").glob("*.jsonl"))


def block(n: int, text: str) -> RetrievedChunk:
    return RetrievedChunk(n, 1.0, f"c{n}", f"doc{n}", f"Doc {n}", f"doc{n}.md", None, ("everyone",), text)


def assert_reads_back(answer: str, quotes: list[str], n: int) -> None:
    """Rendered, then checked: in the house format, one citation per sentence, the statement and quotes kept."""
    text = render_answer(answer, quotes, n)
    statement = text.splitlines()[0]
    assert is_house_format(text, n), text
    assert len(CITATION.findall(statement)) == len(split_sentences(answer)) == len(split_sentences(statement))
    blocks = [block(k, "Unrelated text.") for k in range(1, n)] + [block(n, " ".join(quotes))]
    checked = check_citations(text, blocks)
    assert checked.format_valid and checked.removed == 0 and not checked.refusal
    expected = normalise_space(answer)
    expected = expected if expected[-1] in ".!?" else expected + "."
    assert normalise_space(checked.statement) == expected
    assert [q.text for q in checked.quotes] == [normalise_space(q) for q in quotes]
    assert [q for _, q in parse_answer(text).quotes] == [normalise_space(q) for q in quotes]


def test_an_abbreviation_before_a_number_stays_in_its_sentence() -> None:
    text = render_answer("Call the help desk at ext. 4357 for a reset.", ["Dial ext. 4357 for a reset."], 2)
    assert text.splitlines()[0] == "Call the help desk at ext. 4357 for a reset [2]."
    assert split_sentences("Take approx. 3.5 days, e.g. 2 on Friday. Then reset it.") == [
        "Take approx. 3.5 days, e.g. 2 on Friday.",
        "Then reset it.",
    ]


@pytest.mark.parametrize("path", CURATED, ids=lambda p: p.name)
def test_every_curated_item_renders_and_reads_back(path: Path) -> None:
    items = [item for item in load_items(path, path.stem) if item.answerable]
    assert items
    for item in items:
        assert_reads_back(item.answer, list(item.quotes), 2)


WORDS = st.sampled_from(
    ["ext.", "approx.", "e.g.", "i.e.", "No.", "vs.", "3.5", "4357", "1.", "2)", "v2.1", "U.S.", "$1,200.50",
     "days", "the", "portal", "leave", "(see", "page)", "reset", "Friday", "HR", "weeks;", "and", "20%", "a.m."]
)  # fmt: skip
OPENERS = st.sampled_from(["Employees", "The", "1.", "2.", "Yes,", "No,", "(Optional)", "Call", "HR", "3.5"])
ENDS = st.sampled_from([".", "!", "?", ""])


@st.composite
def sentences(draw: st.DrawFn) -> str:
    words = [draw(OPENERS), *draw(st.lists(WORDS, max_size=8))]
    return " ".join(words) + draw(ENDS)


@given(
    answer=st.lists(sentences(), min_size=1, max_size=4).map(" ".join),
    quotes=st.lists(st.lists(WORDS, min_size=3, max_size=10).map(" ".join), min_size=1, max_size=2),
    n=st.integers(min_value=1, max_value=5),
)
def test_any_answer_with_abbreviations_decimals_and_numbered_lists_reads_back(
    answer: str, quotes: list[str], n: int
) -> None:
    assert_reads_back(answer, quotes, n)


def test_a_sentence_left_uncited_is_out_of_format() -> None:
    assert not is_house_format('Call ext. 4357. Then reset it [1].\n[1] "Call ext. 4357 to reset it."', 1)
    assert is_house_format('Call ext. 4357 [1]. Then reset it [1].\n[1] "Call ext. 4357 to reset it."', 1)


def test_the_answer_line_loses_markdown_bold_and_its_quotes_stay_verbatim() -> None:
    quote = '[1] "4. Submit within **30 days** of the expense date."'
    assert without_emphasis(f"Submit within **30 days [1].\n{quote}") == f"Submit within 30 days [1].\n{quote}"
