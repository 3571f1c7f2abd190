"""The citation check: what a generated answer in the house format (`assistant.house_format`) may be trusted for.

Citations are `[n]` markers pointing at the numbered context blocks; a marker that points at no block is removed
and counted. Each quote line `[n] "..."` is checked verbatim against block n, other quoted passages against the
blocks the answer cites, and the model's own refusal sentence is recognised. A quote is verified only when it is a
verbatim passage of block n of at least the grammar's `SHORTEST_QUOTE` words and some claim of the answer is placed
in block n by its own words: a citation the decoding grammar could only give by fallback
(`quote_constraint.cited_claims`) verifies nothing. Every quote not verified is listed in `unsupported_quotes`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from assistant.house_format import (
    CITATION,
    PROSE_QUOTE,
    fold,
    is_house_format,
    is_refusal,
    parse_answer,
    statement_text,
)
from assistant.quote_constraint import SHORTEST_QUOTE, cited_claims
from assistant.retriever import RetrievedChunk


@dataclass(frozen=True)
class QuoteLine:
    block: int  # as written: a number of no shown block makes an unverified quote
    text: str
    verbatim: bool  # at least SHORTEST_QUOTE words, found (whitespace and case aside) in block `block`
    fallback: bool = False  # no claim of the answer is placed in block `block` by its words

    @property
    def verified(self) -> bool:
        """What a reader may be told: the quote is in its block, and the block holds a claim of the answer."""
        return self.verbatim and not self.fallback


@dataclass(frozen=True)
class CheckedText:
    text: str
    cited: list[int]  # block numbers, in order of first use
    removed: int
    unsupported_quotes: list[str]
    quotes: list[QuoteLine] = field(default_factory=list)
    statement: str = ""
    refusal: bool = False  # the model wrote the house refusal sentence
    format_valid: bool = False
    fallback_sentences: list[str] = field(default_factory=list)


def check_citations(text: str, blocks: Sequence[RetrievedChunk]) -> CheckedText:
    """Drop `[n]` markers (and quote lines) that point at no block; check quote lines against their block and other
    quotes against the cited blocks; tell whether the text follows the house format and which claims only the
    grammar's fallback cites. A `[n]` inside a quote is the document's text, never a citation."""
    refusal = is_refusal(text)
    format_valid = refusal or is_house_format(text, len(blocks))
    removed = 0
    cited: list[int] = []

    def keep_or_drop(match: re.Match[str]) -> str:
        nonlocal removed
        n = int(match.group(1))
        if 1 <= n <= len(blocks):
            if n not in cited:
                cited.append(n)
            return match.group(0)
        removed += 1
        return ""

    parsed = parse_answer(text)
    # The statement's lines (markers of no block dropped), then the quote lines of a block.
    kept = [_tidy(CITATION.sub(keep_or_drop, line)) for line in parsed.statement]
    prose = parsed.prose
    claims = cited_claims(prose, [b.text for b in blocks])
    placed = {c.block for c in claims if c.placed}  # blocks some claim rests on by its words
    placed_claims = {c.claim for c in claims if c.placed}
    fallback = [_tidy(c.claim).strip(" .!?") for c in claims if c.claim not in placed_claims]
    quotes: list[QuoteLine] = []
    for n, quote in parsed.quotes:
        if not 1 <= n <= len(blocks):
            removed += 1  # and the line goes: its text is no statement, and it quotes no block
        else:
            kept.append(f'[{n}] "{quote}"')
            if n not in cited:
                cited.append(n)
        verbatim = 1 <= n <= len(blocks) and _is_verbatim(quote, blocks[n - 1].text)
        quotes.append(QuoteLine(n, quote, verbatim, n not in placed))
    sources = " ".join(fold(blocks[n - 1].text) for n in cited)
    unsupported = [q.text for q in quotes if not q.verified]
    unsupported += [q for q in PROSE_QUOTE.findall(prose) if fold(q) not in sources]
    fallback_sentences = list(dict.fromkeys(f for f in fallback if f))
    return CheckedText(
        "\n".join(kept), cited, removed, unsupported, quotes, statement_text(prose), refusal, format_valid,
        fallback_sentences,
    )  # fmt: skip


def _tidy(line: str) -> str:
    """A line with a marker dropped: no double spaces, no space before punctuation."""
    return re.sub(r"[ \t]+([.,;:])", r"\1", re.sub(r"[ \t]{2,}", " ", line)).strip()


def _is_verbatim(quote: str, block_text: str) -> bool:
    """A passage of the block, whitespace and case aside, of at least the grammar's shortest quote."""
    return len(quote.split()) >= SHORTEST_QUOTE and fold(quote) in fold(block_text)
