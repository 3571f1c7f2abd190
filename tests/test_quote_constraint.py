"""Copy-constrained quote lines, with a tiny random Gemma 3 and a real SentencePiece-style tokenizer (BPE with
U+2581 word boundaries, as Gemma's) trained here on the sample handbook: a random model left alone never quotes
a block; constrained, every quote it writes is a sentence of the block it names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assistant.generator import Generator
from assistant.prompt import END_OF_ANSWER, MODEL_REFUSAL, ContextBlock, render_tuned_prompt
from assistant.quote_constraint import (
    CitedClaim,
    FormatRequest,
    QuoteConstraint,
    cited_claims,
    piece_index,
    quote_candidates,
)
from assistant.settings import GeneratorSettings
from tests.conftest import save_tiny_gemma

BLOCK = (
    "Employees reset passwords at the self-service portal. The portal asks for a second factor.\n"
    "Locked accounts are unlocked by the service desk."
)
OTHER = "Parking is in the north garage."
ANSWER_START = " Use the portal [1].\n[1]"


@pytest.fixture(scope="module")
def sentencepiece_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import string

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [p.read_text(encoding="utf-8") for p in sorted(Path("samples/handbook").rglob("*.md"))]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=800, special_tokens=["<pad>", "<eos>", "<bos>", "<unk>"], initial_alphabet=list(string.printable)
    )
    tokenizer.train_from_iterator([*texts, BLOCK, OTHER], trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    return save_tiny_gemma(fast, tmp_path_factory.mktemp("sentencepiece-gemma"), max_positions=1024)


def _continue(generator: Generator, constrained: bool, exact: bool = True) -> str:
    """Greedy text after `[1]`, the answer forced up to there (`ANSWER_START`)."""
    import torch
    from transformers import LogitsProcessorList

    model, tokenizer = generator._loaded
    prompt = render_tuned_prompt("How do I reset my password?", [ContextBlock("IT", None, BLOCK)])
    prompt_ids = tokenizer(prompt)["input_ids"]
    ids = torch.tensor([prompt_ids + tokenizer(ANSWER_START, add_special_tokens=False)["input_ids"]])
    head: Any = model.get_output_embeddings()
    rescore = head.exact_logits if exact and hasattr(head, "exact_logits") else None
    processors = [QuoteConstraint(tokenizer, [BLOCK, OTHER], len(prompt_ids), rescore)] if constrained else []
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=60,
            do_sample=False,
            logits_processor=LogitsProcessorList(processors),
            pad_token_id=tokenizer.pad_token_id,
        )
    answer = str(tokenizer.decode(out[0, len(prompt_ids) :], skip_special_tokens=True))
    return answer.split("\n[1]", 1)[1]


def test_hard_wrapped_lines_are_joined_and_table_rows_stand_alone() -> None:
    text = (
        "The board discussed whether to raise a\nnew round in 2027. It did not vote.\n\n"
        "| Revenue | $41.6M |\n- Travel is booked early"
    )
    candidates = quote_candidates(text)
    assert ' "The board discussed whether to raise a new round in 2027."' in candidates  # the wrapped sentence whole
    assert ' "The board discussed whether to raise a"' not in candidates  # never its first line alone
    assert {' "| Revenue | $41.6M |"', ' "- Travel is booked early"'} <= set(candidates)  # rows and items stand alone


def test_a_list_item_never_runs_on_into_the_next() -> None:
    text = (
        "- US travel: $70 per full travel day. No receipts are needed.\n"
        "- EU travel: EUR 62 per full travel day.\n"
        "1. Open the expense app.\n2. Submit within 30 days."
    )
    candidates = quote_candidates(text)
    assert ' "No receipts are needed."' in candidates  # the item's own second sentence
    assert ' "- EU travel: EUR 62 per full travel day."' in candidates
    assert not any("receipts are needed. - EU" in c or "app. 2." in c for c in candidates)  # no glued items


def test_candidates_are_every_sentence_and_line_of_the_block() -> None:
    candidates = quote_candidates("Reno\nSee the table. Pittsburgh only.")
    assert {' "See the table. Pittsburgh only."', ' "See the table."'} <= set(candidates)  # a line, its sentences
    assert not any(c in candidates for c in (' "Reno"', ' "Pittsburgh only."'))  # fewer than 3 words
    assert quote_candidates(BLOCK) == sorted(
        {
            ' "Employees reset passwords at the self-service portal. The portal asks for a second factor."',
            ' "Employees reset passwords at the self-service portal."',
            ' "The portal asks for a second factor."',
            ' "Locked accounts are unlocked by the service desk."',
        }
    )


def test_only_quote_lines_are_constrained(sentencepiece_model: Path, tmp_path: Path) -> None:
    generator = Generator(GeneratorSettings(model=str(sentencepiece_model), device="cpu"), tmp_path)
    _, tokenizer = generator._loaded
    constraint = QuoteConstraint(tokenizer, [BLOCK, OTHER], 0)
    assert constraint.allowed(" Use the portal [1") is None  # the statement is free
    assert constraint.allowed(" Use the portal [1].\n[3]") is None  # no block 3: the citation check drops it
    closed = constraint.allowed(' Use it [1].\n[1] "The portal asks for a second factor."')
    assert closed and all(t == tokenizer.eos_token_id or tokenizer.decode([t]).startswith("\n") for t in closed)
    assert ' "Wellbeing and development"' not in quote_candidates("Wellbeing and development\n\nText follows.")
    allowed = constraint.allowed(' Use it [1].\n[1] "The portal')
    assert allowed
    spelled = {tokenizer.decode([tokenizer("a", add_special_tokens=False)["input_ids"][-1], t])[1:] for t in allowed}
    assert all(' asks for a second factor."'.startswith(text) for text in spelled)
    assert constraint.allowed(" Use it [2] .\n[2]") is not None  # block 2 has its own sentences


def test_a_constrained_quote_is_a_sentence_of_its_block(sentencepiece_model: Path, tmp_path: Path) -> None:
    settings = GeneratorSettings(model=str(sentencepiece_model), device="cpu", shortlist_head=None)
    generator = Generator(settings, tmp_path)
    free = _continue(generator, constrained=False)
    assert not any(free.startswith(c) for c in quote_candidates(BLOCK))  # a random model does not quote
    quoted = _continue(generator, constrained=True)
    assert any(quoted.startswith(c + "\n") or quoted == c for c in quote_candidates(BLOCK)), (
        quoted
    )  # then its line ends


def test_the_shortlist_head_scores_allowed_tokens_exactly(sentencepiece_model: Path, tmp_path: Path) -> None:
    plain = Generator(GeneratorSettings(model=str(sentencepiece_model), device="cpu", shortlist_head=None), tmp_path)
    fast = Generator(GeneratorSettings(model=str(sentencepiece_model), device="cpu", shortlist_head=2), tmp_path)
    assert type(fast._loaded[0].get_output_embeddings()).__name__ == "ShortlistHead"
    assert _continue(fast, constrained=True) == _continue(plain, constrained=True)


def test_the_setting_turns_the_constraint_off(sentencepiece_model: Path, tmp_path: Path) -> None:
    for on in (True, False):
        settings = GeneratorSettings(model=str(sentencepiece_model), device="cpu", constrain_quotes=on)
        generator = Generator(settings, tmp_path)
        kwargs = generator._generate_kwargs(None, generator._inputs("Question"), FormatRequest.of([BLOCK], "Question"))
        assert ("logits_processor" in kwargs) == on
        assert "logits_processor" not in generator._generate_kwargs(None, generator._inputs("Question"), None)


def _spelled(tokenizer: Any, ids: list[int]) -> set[str]:
    anchor = tokenizer("a", add_special_tokens=False)["input_ids"][-1]
    return {tokenizer.decode([anchor, t])[1:] for t in ids if t != tokenizer.eos_token_id}


def test_the_answer_cites_before_it_ends_and_only_quotes_of_cited_blocks_follow(
    sentencepiece_model: Path, tmp_path: Path
) -> None:
    _, tokenizer = Generator(GeneratorSettings(model=str(sentencepiece_model), device="cpu"), tmp_path)._loaded
    constraint = QuoteConstraint(tokenizer, [BLOCK, OTHER], 0)
    banned = constraint.constrain(" Use the portal")
    assert banned is not None and banned[1] is False  # a ban: anything but these
    assert tokenizer.eos_token_id in banned[0]
    assert all("\n" in text or END_OF_ANSWER.startswith(text) for text in _spelled(tokenizer, banned[0]))
    assert constraint.constrain(" Use the portal [1].") is None  # it cites: it may end
    assert constraint.constrain(" " + MODEL_REFUSAL) is None  # the refusal needs no citation

    after_answer = constraint.constrain(" Use the portal [1].\n")
    assert after_answer is not None and after_answer[1] and tokenizer.eos_token_id not in after_answer[0]
    assert all("[1]".startswith(text) for text in _spelled(tokenizer, after_answer[0]))  # block 1 only: it is cited
    after_quote = constraint.constrain(' Use it [1].\n[1] "The portal asks for a second factor."\n')
    assert after_quote is not None and tokenizer.eos_token_id in after_quote[0]  # the end may come now
    assert all("[1]".startswith(t) or END_OF_ANSWER.startswith(t) for t in _spelled(tokenizer, after_quote[0]))
    after_refusal = constraint.constrain(f" {MODEL_REFUSAL}\n")
    assert after_refusal is not None
    assert all(END_OF_ANSWER.startswith(text) for text in _spelled(tokenizer, after_refusal[0]))


def test_no_sentence_starts_after_one_left_uncited(sentencepiece_model: Path, tmp_path: Path) -> None:
    _, tokenizer = Generator(GeneratorSettings(model=str(sentencepiece_model), device="cpu"), tmp_path)._loaded
    constraint = QuoteConstraint(tokenizer, [BLOCK, OTHER], 0)
    for uncited in (" Use the portal.", " Use the portal. "):
        banned = constraint.constrain(uncited)
        assert banned is not None and banned[1] is False
        spelled = _spelled(tokenizer, banned[0])
        assert "\n" in "".join(spelled)  # nor may the line end
        assert {" The", " Locked"} & spelled and not {" [", "[", " 4", " the"} & spelled  # it may cite or go on
        assert ("T" in spelled) == uncited.endswith(" ")  # after the space, a capital alone starts one
    assert constraint.constrain(" Use the portal [1]. ") is None  # a cited sentence: the next may start
    assert constraint.constrain(" Call ext. 4357") == (constraint.pieces.line_breaking, False)  # no sentence end


def test_an_answer_line_running_on_must_cite_then_end(sentencepiece_model: Path, tmp_path: Path) -> None:
    """The held-out hotel answer (2026-12-05) repeated "EUR 205 Vienna and other EU cities;" to the token limit."""
    _, tokenizer = Generator(GeneratorSettings(model=str(sentencepiece_model), device="cpu"), tmp_path)._loaded
    constraint = QuoteConstraint(tokenizer, [BLOCK, OTHER], 0)
    loop = " EUR 205 Vienna and other EU cities;" * 9
    cite = constraint.constrain(loop)
    assert cite is not None and cite[1] and _spelled(tokenizer, cite[0]) <= {" ", " ["}  # only a citation may come
    spaced = constraint.constrain(loop + " ")
    assert spaced is not None and spaced[1] and _spelled(tokenizer, spaced[0]) == {"["}  # not another space
    number = constraint.constrain(loop + " [")
    assert number is not None and number[1] and _spelled(tokenizer, number[0]) <= {"1", "1]", "2", "2]"}
    close = constraint.constrain(loop + " [1")
    assert close is not None and close[1] and _spelled(tokenizer, close[0]) == {"]"}  # then it closes
    end = constraint.constrain(loop + " [1]")
    assert end is not None and end[1] and all(t.strip() == "" and "\n" in t for t in _spelled(tokenizer, end[0]))
    assert constraint.constrain(" EUR 205 Vienna and other EU cities;" * 2) is not None  # short: the usual ban
    assert constraint.constrain(" EUR 205 Vienna [1]") is None


def test_a_citation_names_a_block_that_holds_its_sentence(sentencepiece_model: Path, tmp_path: Path) -> None:
    _, tokenizer = Generator(GeneratorSettings(model=str(sentencepiece_model), device="cpu"), tmp_path)._loaded
    constraint = QuoteConstraint(tokenizer, [OTHER, BLOCK], 0)
    assert constraint.supporting_blocks("Locked accounts are unlocked by the service desk ") == [2]
    assert constraint.supporting_blocks("Yes ") == [1]  # too few words to judge: the retriever's best block
    assert constraint.supporting_blocks("Bring a towel to the beach party ") == [1]  # no block holds half
    digits = constraint.constrain(" Locked accounts are unlocked by the service desk [")
    assert digits is not None and digits[1] and digits[0]
    assert all("2]".startswith(text) for text in _spelled(tokenizer, digits[0]))
    free = QuoteConstraint(tokenizer, [OTHER, BLOCK], 0, attribute_citations=False)
    assert free.constrain(" Locked accounts are unlocked by the service desk [") == (free.pieces.line_breaking, False)


def test_a_citation_its_sentence_cannot_place_goes_to_the_retrievers_best_block(
    sentencepiece_model: Path, tmp_path: Path
) -> None:
    _, tokenizer = Generator(GeneratorSettings(model=str(sentencepiece_model), device="cpu"), tmp_path)._loaded
    asked = QuoteConstraint(tokenizer, [OTHER, BLOCK], 0, question="Who handles locked accounts at the service desk?")
    assert asked.supporting_blocks("Yes ") == [1]  # "Yes" says nothing: block 1, the retriever's best
    assert asked.supporting_blocks("Locked accounts are unlocked by the service desk ") == [2]  # the sentence first
    digits = asked.constrain(" No [")
    assert digits is not None and digits[0]
    assert all("1]".startswith(text) for text in _spelled(tokenizer, digits[0]))
    heading_first = QuoteConstraint(tokenizer, ["Reno", BLOCK], 0)  # block 1 has no sentence to quote
    assert heading_first.supporting_blocks("Yes ") == [2]
    assert heading_first.supporting_blocks("Reno ") == [2]  # the block holding the words has nothing to quote


def test_a_second_citation_of_a_claim_names_another_block(sentencepiece_model: Path, tmp_path: Path) -> None:
    _, tokenizer = Generator(GeneratorSettings(model=str(sentencepiece_model), device="cpu"), tmp_path)._loaded
    constraint = QuoteConstraint(tokenizer, [OTHER, BLOCK], 0)
    digits = constraint.constrain(" Locked accounts are unlocked by the service desk [2][")
    assert digits is not None and digits[0]
    assert all("1]".startswith(text) for text in _spelled(tokenizer, digits[0]))  # not [2] again


def test_a_quote_line_quotes_what_supports_the_answer_and_never_repeats(
    sentencepiece_model: Path, tmp_path: Path
) -> None:
    _, tokenizer = Generator(GeneratorSettings(model=str(sentencepiece_model), device="cpu"), tmp_path)._loaded
    constraint = QuoteConstraint(
        tokenizer, [BLOCK, OTHER], 0, question="Are locked accounts handled by the service desk?"
    )
    every = quote_candidates(BLOCK)
    locked = ' "Locked accounts are unlocked by the service desk."'
    portal = ' "Employees reset passwords at the self-service portal."'
    answer = "The service desk unlocks locked accounts [1]."
    assert constraint.quotable(1, answer, []) == [locked]
    assert constraint.quotable(1, answer, [f"[1]{locked}"]) == [c for c in every if c != locked]  # no repeat
    both = "Reset passwords at the portal [1]. The service desk unlocks locked accounts [1]."
    supporting = constraint.quotable(1, both, [])  # each claim gets its own quote (or a line holding it)
    assert {portal, locked} <= set(supporting) and ' "The portal asks for a second factor."' not in supporting
    assert constraint.quotable(1, "Yes [1].", []) == [locked]  # "Yes" says nothing: the question decides
    assert constraint.quotable(1, "Bring a towel to the beach [1].", []) == [locked]
    unasked = QuoteConstraint(tokenizer, [BLOCK, OTHER], 0)
    assert unasked.quotable(1, "Bring a towel to the beach [1].", []) == every  # nothing decides: any
    spelled = _spelled(tokenizer, constraint.allowed(f" {answer}\n[1]") or [])
    assert spelled and all(' "Locked accounts'.startswith(text) for text in spelled)
    free = QuoteConstraint(tokenizer, [BLOCK, OTHER], 0, attribute_citations=False)
    assert free.quotable(1, answer, []) == every


def test_a_block_with_nothing_left_to_quote_is_not_offered(sentencepiece_model: Path, tmp_path: Path) -> None:
    _, tokenizer = Generator(GeneratorSettings(model=str(sentencepiece_model), device="cpu"), tmp_path)._loaded
    constraint = QuoteConstraint(tokenizer, [BLOCK, OTHER], 0)
    parked = ' Park in the north garage [2].\n[2] "Parking is in the north garage."\n'
    after = constraint.constrain(parked)  # block 2's only sentence is quoted: the answer may only end
    assert after is not None and after[1] and tokenizer.eos_token_id in after[0]
    assert all(END_OF_ANSWER.startswith(text) for text in _spelled(tokenizer, after[0]))
    table = QuoteConstraint(tokenizer, ["Parking rules", OTHER], 0)  # a block without a quotable sentence
    nothing = table.constrain(" It is in the table [1].\n")
    assert nothing is not None and tokenizer.eos_token_id in nothing[0]


def test_a_ban_that_empties_the_shortlist_scores_every_token_exactly(sentencepiece_model: Path, tmp_path: Path) -> None:
    import torch

    _, tokenizer = Generator(GeneratorSettings(model=str(sentencepiece_model), device="cpu"), tmp_path)._loaded
    vocabulary = len(tokenizer)
    exact = torch.arange(vocabulary, dtype=torch.float32)  # stands in for the head's full-precision logits
    constraint = QuoteConstraint(tokenizer, [BLOCK, OTHER], 0, lambda ids: exact if ids is None else exact[ids])
    ids = torch.tensor([tokenizer(" Use the portal.", add_special_tokens=False)["input_ids"]])
    banned, _ = constraint.constrain(tokenizer.decode(ids[0])) or ([], True)
    assert banned
    shortlist = torch.full((1, vocabulary), float("-inf"))
    shortlist[0, banned[:2]] = 1.0  # the shortlist holds only tokens the grammar bans here
    scores = constraint(ids, shortlist)
    assert torch.isneginf(scores[0, banned]).all() and torch.isfinite(scores).sum() == vocabulary - len(set(banned))


def test_a_citation_never_names_a_block_with_nothing_to_quote(sentencepiece_model: Path, tmp_path: Path) -> None:
    _, tokenizer = Generator(GeneratorSettings(model=str(sentencepiece_model), device="cpu"), tmp_path)._loaded
    glued = "Parking rules"  # a heading alone: no sentence of 3 words or more
    constraint = QuoteConstraint(tokenizer, [glued, BLOCK], 0, question="Where are the parking rules?")
    digits = constraint.constrain(" Parking rules [")
    assert digits is not None and digits[0]
    assert all("2]".startswith(text) for text in _spelled(tokenizer, digits[0]))


def test_cited_claims_tell_a_placed_citation_from_the_grammars_fallback() -> None:
    answer = "Locked accounts are unlocked by the service desk [2][1]. Yes [1]. Bring a towel to the beach [2]."
    assert cited_claims(answer, [OTHER, BLOCK]) == [
        CitedClaim("Locked accounts are unlocked by the service desk ", 2, True),
        CitedClaim("Locked accounts are unlocked by the service desk ", 1, False),  # a second citation of the claim
        CitedClaim(". Yes ", 1, False),  # too short to place: the retriever's best block
        CitedClaim(". Bring a towel to the beach ", 2, False),  # no block holds half its words
    ]
    assert cited_claims("Parking rules [1] and [7].", ["Parking rules", OTHER]) == [
        CitedClaim("Parking rules ", 1, False)  # block 1 has no sentence to quote; block 7 is none shown
    ]


def test_a_block_holding_the_evidence_scorers_best_sentences_quotes_only_those(
    sentencepiece_model: Path, tmp_path: Path
) -> None:
    _, tokenizer = Generator(GeneratorSettings(model=str(sentencepiece_model), device="cpu"), tmp_path)._loaded
    best = "The portal asks for a second factor."
    constraint = QuoteConstraint(tokenizer, [BLOCK, OTHER], 0, preferred_quotes={1: {best}})
    answer = "The service desk unlocks locked accounts [1]."  # its words would pick the service-desk sentence
    assert constraint.quotable(1, answer, []) == [f' "{best}"']
    assert f' "{best}"' not in constraint.quotable(1, answer, [f'[1] "{best}"'])  # quoted: the others, no repeat


def test_once_the_evidence_scorer_has_found_the_answer_the_model_may_not_refuse(
    sentencepiece_model: Path, tmp_path: Path
) -> None:
    _, tokenizer = Generator(GeneratorSettings(model=str(sentencepiece_model), device="cpu"), tmp_path)._loaded
    opening = "The documents"
    towards_refusal = set(piece_index(tokenizer).spelling_prefixes(MODEL_REFUSAL[len(opening) :]))
    assert towards_refusal
    decided = QuoteConstraint(tokenizer, [BLOCK, OTHER], 0, refusal_allowed=False)
    free = QuoteConstraint(tokenizer, [BLOCK, OTHER], 0)
    banned, only = decided.constrain(opening) or ([], True)
    assert not only and towards_refusal <= set(banned)
    allowed_banned, _ = free.constrain(opening) or ([], True)
    assert not towards_refusal <= set(allowed_banned)  # without the scorer's verdict the model may still refuse
    assert decided.constrain("The") == free.constrain("The")  # an answer may open like the refusal


def test_with_the_scorers_best_sentences_only_their_blocks_may_be_cited(
    sentencepiece_model: Path, tmp_path: Path
) -> None:
    _, tokenizer = Generator(GeneratorSettings(model=str(sentencepiece_model), device="cpu"), tmp_path)._loaded
    pieces = piece_index(tokenizer)
    answer = "Use the self-service portal to reset passwords ["  # its words place it in block 1
    free = QuoteConstraint(tokenizer, [BLOCK, OTHER], 0)
    assert set(free.constrain(answer)[0]) == set(pieces.spelling_prefixes("1]"))  # type: ignore[index]
    preferred = QuoteConstraint(tokenizer, [BLOCK, OTHER], 0, preferred_quotes={2: {OTHER}})
    assert set(preferred.constrain(answer)[0]) == set(pieces.spelling_prefixes("2]"))  # type: ignore[index]


def test_a_format_request_travels_as_json_unchanged() -> None:
    request = FormatRequest.of([BLOCK, OTHER], "How?", {2: [OTHER]}, refusal_allowed=False)
    assert FormatRequest.from_json(json.loads(json.dumps(request.to_json()))) == request


def test_a_claim_that_is_one_figure_rests_on_the_block_holding_it() -> None:
    hotels = "Nightly hotel caps (before taxes):\n\n| Location | Nightly cap |\n|---|---|\n| Reno | $155 |"
    other = "The Reno office opens at 8:00am and closes at 6:00pm on weekdays."
    assert cited_claims("$155 [1].", [hotels, other])[0].placed  # the figure is in block 1
    assert not cited_claims("$185 [1].", [hotels, other])[0].placed  # a figure block 1 does not hold
    assert not cited_claims("Reno [2].", [hotels, other])[0].placed  # one word that is no figure: not judged
