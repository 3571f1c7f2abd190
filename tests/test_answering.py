"""The answer pipeline on the sample handbook: real retrieval and recall gate, a tiny `from_config` generator."""

from __future__ import annotations

import threading
from collections.abc import Generator as GeneratorType
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.access import Principal
from assistant.answer_model import Usage
from assistant.answering import NOT_CONFIDENT, REFUSAL, Answer, Answerer
from assistant.citation_check import QuoteLine, check_citations
from assistant.follow_up import depends_on_previous, retrieval_query
from assistant.generator import Generator
from assistant.prompt import MODEL_REFUSAL, ContextBlock, Turn, render_answer, render_prompt, statement_lines
from assistant.quote_constraint import SHORTEST_QUOTE
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


def test_the_house_format_is_recognised_and_its_quotes_checked_against_their_block() -> None:
    blocks = [chunk(1, "Visitors park in the east lot."), chunk(2, "Birth parents get 20 weeks of\npaid leave.")]
    good = render_answer("Birth parents get 20 weeks of paid leave.", ["Birth parents get 20 weeks of paid leave."], 2)
    assert good == 'Birth parents get 20 weeks of paid leave [2].\n[2] "Birth parents get 20 weeks of paid leave."'
    checked = check_citations(good, blocks)
    assert checked.format_valid and checked.cited == [2] and checked.unsupported_quotes == []
    assert checked.quotes == [QuoteLine(2, "Birth parents get 20 weeks of paid leave.", True)]
    assert checked.statement == "Birth parents get 20 weeks of paid leave."
    wrong_block = check_citations(good.replace('[2] "', '[1] "'), blocks)
    assert wrong_block.format_valid and wrong_block.unsupported_quotes == ["Birth parents get 20 weeks of paid leave."]
    for text in (
        "Birth parents get 20 weeks of paid leave [2].",  # no quote line
        'Birth parents get 20 weeks. Of paid leave [2].\n[2] "Birth parents get 20 weeks of paid leave."',  # uncited
        'Twenty weeks [3].\n[3] "Birth parents get 20 weeks of paid leave."',  # no block 3
        'Twenty weeks [2].\n[2] "Birth parents get 20 weeks of paid leave."\nAnd more.',  # prose after the quotes
    ):
        assert not check_citations(text, blocks).format_valid, text
    refusal = check_citations(MODEL_REFUSAL, blocks)
    assert refusal.refusal and refusal.format_valid and refusal.cited == []


def test_multi_sentence_answers_cite_every_sentence() -> None:
    text = render_answer("Yes, on Fridays. Dogs stay on a leash.", ["Dogs are welcome on Fridays.", "On a leash."], 1)
    assert text.splitlines()[0] == "Yes, on Fridays [1]. Dogs stay on a leash [1]."
    assert check_citations(text, [chunk(1, "Dogs are welcome on Fridays. On a leash.")]).format_valid


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
        # Passages found but not trusted: the refusal says so, never that the documents do not answer.
        assert answer.refused and answer.answer == (NOT_CONFIDENT if answer.retrieved else REFUSAL)
        assert all(set(c.groups) & principal.groups for c in answer.retrieved)  # only what they may read
        assert bool(answer.retrieved) == (principal.user_id == "dana")  # victor reads nothing
        assert answer.completion_tokens == 0 and answer.model is None and answer.citations == []


def test_answers_stream_and_sources_are_only_readable_chunks(answerer: Answerer) -> None:
    dana = Principal.of("dana", ["everyone"])
    stream = answerer.stream(dana, "How many floating holidays do I get each year?")
    pieces = list(stream)
    final = stream.answer
    assert isinstance(final, Answer) and not final.refused
    assert all(isinstance(piece, str) for piece in pieces)
    assert not "".join(pieces)[:1].isspace()  # the space after the answer cue is not shown
    assert final.retrieved and all("everyone" in c.groups for c in final.retrieved)
    assert {c.doc_id for c in final.citations} <= {c.doc_id for c in final.retrieved}
    assert final.prompt_tokens > 100 and final.completion_tokens > 0
    assert final.model and final.adapter is None


def test_closing_the_answer_stream_stops_the_decoding_thread(
    handbook_index: Settings, tiny_model: Path, tmp_path: Path
) -> None:
    generator = Generator(GeneratorSettings(model=str(tiny_model), device="cpu", max_new_tokens=4000), tmp_path)
    with runtime(handbook_index, generator=generator) as components:
        answerer = Answerer(components.retriever(), components.recall_gate, generator)
        generator.load()
        components.store.count("handbook")  # the index opened first: its holder serves it on a thread of its own
        before = threading.active_count()
        stream = answerer.stream(Principal.of("dana", ["everyone"]), "How many floating holidays do I get each year?")
        assert isinstance(next(stream), str)
        assert threading.active_count() == before + 1  # the decoding thread
        stream.close()  # returns once the worker has stopped, not after 4,000 tokens
        assert threading.active_count() == before
        with pytest.raises(RuntimeError, match="closed before the answer was complete"):
            stream.answer  # noqa: B018


def test_follow_up_is_retrieved_with_the_previous_question(answerer: Answerer) -> None:
    hannah = Principal.of("hannah", ["everyone", "hr"])
    history = [Turn("How much parental leave do birthing parents get?", "Twenty weeks [1].")]
    answer = answerer.ask(hannah, "And how much for the other parent?", history)
    assert not answer.refused
    assert answer.retrieved[0].doc_id == "hr/parental-leave.md"


def test_a_question_of_its_own_is_retrieved_alone_after_another(answerer: Answerer) -> None:
    """The new user's conversation (2026-12-05): the vacation question, asked after the password question, was
    searched together with it and refused."""
    dana = Principal.of("dana", ["everyone"])
    password = "security/password-and-mfa-policy.md"
    history = [Turn("How do I reset my password?", "Use Forgot password [1].", (password,))]
    answer = answerer.ask(dana, "How many vacation days do I get?", history)
    assert answer.retrieved[0].doc_id == answerer.ask(dana, "How many vacation days do I get?").retrieved[0].doc_id
    assert password not in [c.doc_id for c in answer.retrieved[:2]]
    assert retrieval_query("Can I carry any of it over?", "How much PTO do I get?") == (
        "How much PTO do I get?\nCan I carry any of it over?"
    )
    assert retrieval_query("How many vacation days do I get?", "How do I reset my password?") == (
        "How many vacation days do I get?"
    )
    for alone in ("How long does it take to get reimbursed?", "How many vacation days do I get this year?"):
        assert not depends_on_previous(alone), alone  # "it" and "this" point nowhere: it says enough itself
    for follow_up in ("Do they carry over?", "Who approves it?", "What about Lisbon?", "how do I stop it?"):
        assert depends_on_previous(follow_up), follow_up


def test_history_carries_no_quote_lines() -> None:
    blocks = [ContextBlock("IT", None, "Use the portal.")]
    earlier = Turn("How do I reset it?", 'Use the portal [1].\n[1] "Employees reset passwords at the portal."')
    prompt = render_prompt("And then?", blocks, [earlier])
    assert "A: Use the portal [1].\n" in prompt
    assert "Employees reset passwords" not in prompt


def test_history_keeps_only_turns_whose_cited_documents_the_principal_reads_now(
    answerer: Answerer, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts: list[str] = []

    def generate(prompt: str, **_: object) -> GeneratorType[str, None, Usage]:
        prompts.append(prompt)
        yield "Use the self-service portal [1]."
        return Usage(len(prompt.split()), 8)

    monkeypatch.setattr(answerer.generator, "stream", generate)
    history = [
        Turn("How much parental leave?", "RESTRICTED twenty weeks [1].", ("hr/parental-leave.md",)),
        Turn("How do I reset my password?", "READABLE portal answer [1].", ("security/password-and-mfa-policy.md",)),
        Turn("Which laptop?", "UNCITED answer."),  # cites nothing: nothing shows it is readable
        Turn("Both?", "MIXED answer [1][2].", ("security/password-and-mfa-policy.md", "hr/parental-leave.md")),
    ]
    dana = Principal.of("dana", ["everyone"])  # reads the password policy, not HR's documents
    answer = answerer.ask(dana, "How do I set up multi-factor authentication?", history)
    assert not answer.refused
    [prompt] = prompts
    assert "READABLE portal answer [1]." in prompt
    assert not {"RESTRICTED", "UNCITED", "MIXED"} & set(prompt.replace(".", " ").split())


def test_a_sentence_cited_by_the_grammars_fallback_is_not_verified() -> None:
    blocks = [chunk(1, "Employees reset passwords at the self-service portal."), chunk(2, "Parking is north.")]
    supported = check_citations(
        'Reset passwords at the self-service portal [1].\n[1] "Employees reset passwords at the self-service portal."',
        blocks,
    )
    assert supported.fallback_sentences == [] and [q.verified for q in supported.quotes] == [True]
    assert supported.unsupported_quotes == []
    repeated = 'The merger closes with Acme in March [1].\n[1] "Employees reset passwords at the self-service portal."'
    checked = check_citations(repeated, blocks)  # no block holds the sentence's words: the grammar's fallback
    assert checked.fallback_sentences == ["The merger closes with Acme in March"]
    [quote] = checked.quotes
    assert quote.verbatim and quote.fallback and not quote.verified
    assert checked.unsupported_quotes == ["Employees reset passwords at the self-service portal."]


def test_a_citation_inside_a_quote_cites_nothing() -> None:
    blocks = [chunk(1, "Leave rules are listed in section [2] of the handbook."), chunk(2, "Parking is north.")]
    text = 'Leave rules are in the handbook [1].\n[1] "Leave rules are listed in section [2] of the handbook."'
    checked = check_citations(text, blocks)
    assert checked.cited == [1] and checked.quotes[0].verified


def test_a_quote_line_of_no_block_is_an_unsupported_quote_not_prose() -> None:
    blocks = [chunk(1, "Employees reset passwords at the self-service portal.")]
    checked = check_citations('Use the self-service portal [1].\n[7] "Acme is buying the company."', blocks)
    assert checked.removed == 1 and checked.cited == [1]
    assert checked.unsupported_quotes == ["Acme is buying the company."]
    assert "Acme" not in checked.statement and "Acme" not in statement_lines(checked.text)


def test_a_quote_needs_the_grammars_minimum_words_to_verify() -> None:
    blocks = [chunk(1, "Employees reset passwords at the self-service portal.")]
    short = " ".join(["reset", "passwords", "at", "the"][: SHORTEST_QUOTE - 1])  # in the block, too short
    checked = check_citations(f'Reset passwords at the self-service portal [1].\n[1] "{short}"', blocks)
    [quote] = checked.quotes
    assert not quote.verbatim and not quote.verified and checked.unsupported_quotes == [short]
