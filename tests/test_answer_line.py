"""The answer line says what its first quote says: a line whose specifics its quotes lack and the scorer's first
sentence holds is quoted with that sentence; otherwise that sentence becomes the line (`assistant/answer_line.py`)."""

from __future__ import annotations

from assistant.answer_line import mended_answer, plain_line
from assistant.citation_check import check_citations
from assistant.evidence import EvidenceSelection, ScoredSentence
from assistant.house_format import MODEL_REFUSAL
from assistant.retriever import RetrievedChunk
from assistant.settings import EvidenceSettings

US = "In the US the meal per diem is $70 per full travel day."
EU = "In the EU the meal per diem is EUR 62 per full travel day."
MEETING = "The weekly sync starts at 4:15pm in room 2."
TRAVEL = f"Travel meals are covered. {US} {EU}"


def chunk(rank: int, text: str) -> RetrievedChunk:
    return RetrievedChunk(rank, 1 / rank, f"c{rank}", f"d{rank}.md", f"Doc {rank}", f"d{rank}.md", None, (), text)


def selection(chunks: list[RetrievedChunk], ranked: list[tuple[int, str, float]]) -> EvidenceSelection:
    scored = [ScoredSentence(block, sentence, score) for block, sentence, score in ranked]
    return EvidenceSelection.of(scored, chunks, list, EvidenceSettings())


def test_a_right_line_over_the_wrong_quote_is_quoted_with_the_first_ranked_sentence_that_holds_it() -> None:
    shown = [chunk(1, TRAVEL)]
    chosen = selection(shown, [(1, EU, 0.8), (1, US, 0.7)])
    model = f'The EU rate is EUR 62 per full travel day [1].\n[1] "{US}"'
    mended = mended_answer(check_citations(model, shown), shown, chosen)
    assert mended == f'The EU rate is EUR 62 per full travel day [1].\n[1] "{EU}"\n[1] "{US}"'
    assert all(q.verified for q in check_citations(mended, shown).quotes)
    # The first-ranked sentence does not hold the line's figure: the line gives way to it.
    wrong_first = selection(shown, [(1, US, 0.8), (1, EU, 0.7)])
    assert mended_answer(check_citations(model, shown), shown, wrong_first) == f'{US[:-1]} [1].\n[1] "{US}"'


def test_a_line_that_restates_its_own_quote_wrongly_gives_way_and_a_lead_in_is_passed_over() -> None:
    lead_in = "Nightly hotel caps (before taxes):"
    shown = [chunk(1, f"{lead_in}\n{US}\n{EU}")]
    chosen = selection(shown, [(1, lead_in, 0.9), (1, EU, 0.8), (1, US, 0.7)])
    model = f'It is $70 per full travel day [1].\n[1] "{US}"'  # its quote holds $70: a figure, not the asked one
    assert mended_answer(check_citations(model, shown), shown, chosen) == f'{EU[:-1]} [1].\n[1] "{EU}"\n[1] "{US}"'


def test_a_sentence_pointing_at_text_below_is_passed_over() -> None:
    pointer = "The meal per diem rates are listed below."
    shown = [chunk(1, f"{pointer}\n{US}\n{EU}")]
    chosen = selection(shown, [(1, pointer, 0.9), (1, EU, 0.8)])
    model = f'It is $70 per full travel day [1].\n[1] "{US}"'
    mended = mended_answer(check_citations(model, shown), shown, chosen)
    assert mended is not None and mended.startswith(EU[:-1]) and "below" not in mended.splitlines()[0]


def test_a_vague_line_gives_way_to_the_first_ranked_sentence_and_keeps_its_other_quotes() -> None:
    retrieved = [chunk(1, "Intro text here. " + MEETING), chunk(2, TRAVEL)]
    chosen = selection(retrieved, [(2, EU, 0.9), (2, US, 0.6), (1, MEETING, 0.2)])
    shown = chosen.blocks  # best sentence first: the travel block is [1] now
    assert chosen.top == (1, EU) and shown[0].text == TRAVEL
    model = f'Travel meals are covered per travel day [1].\n[1] "{US}"\n[2] "{MEETING}"'
    mended = mended_answer(check_citations(model, shown), shown, chosen)
    assert mended == f'{EU[:-1]} [1].\n[1] "{EU}"\n[1] "{US}"'  # a quote of another block would not verify
    checked = check_citations(mended, shown)
    assert all(q.verified for q in checked.quotes)


def test_a_time_with_its_suffix_counts_as_the_same_time() -> None:
    shown = [chunk(1, "Intro text here. " + MEETING)]
    chosen = selection(shown, [(1, MEETING, 0.9), (1, "Intro text here.", 0.5)])
    mended = mended_answer(check_citations('It starts at 4:15 [1].\n[1] "Intro text here."', shown), shown, chosen)
    assert mended == f'It starts at 4:15 [1].\n[1] "{MEETING}"\n[1] "Intro text here."'


def test_a_refusal_or_no_scored_sentence_is_left_alone() -> None:
    shown = [chunk(1, TRAVEL)]
    refusal = check_citations(MODEL_REFUSAL, shown)
    assert refusal.refusal and mended_answer(refusal, shown, selection(shown, [(1, US, 0.5)])) is None
    answer = check_citations(f'It is $70 [1].\n[1] "{US}"', shown)
    assert mended_answer(answer, shown, None) is None
    assert mended_answer(answer, shown, selection(shown, [])) is None


def test_a_sentence_becomes_a_plain_answer_line_and_its_quote_stays_verbatim() -> None:
    assert (
        plain_line("4. Submit within **30 days** of the expense date.") == "Submit within 30 days of the expense date."
    )
    assert plain_line("| Fri, Nov 27 | Day after Thanksgiving |") == "Fri, Nov 27 - Day after Thanksgiving"
    wrapped = "- Lost or stolen laptop: call ext. 4357 immediately, even at night. IT will"
    assert plain_line(wrapped) == "Lost or stolen laptop: call ext. 4357 immediately, even at night."
    assert plain_line("Run `pip cache dir` to see it") == "Run `pip cache dir` to see it"
    shown = [chunk(1, f"Intro text here.\n{wrapped}\nwipe it remotely.")]
    chosen = selection(shown, [(1, wrapped, 0.9)])
    mended = mended_answer(check_citations('Call them now [1].\n[1] "Intro text here."', shown), shown, chosen)
    assert mended is not None and mended.splitlines()[1] == f'[1] "{wrapped}"'
    checked = check_citations(mended, shown)
    assert checked.format_valid and not checked.fallback_sentences and checked.quotes[0].verified
