"""The house answer format: one idea of a sentence, written by `render_answer` (training targets, worked
examples), read back by `parse_answer` and `is_house_format` (the citation check, `assistant.citation_check`), and
the rules the decoding grammar keeps (`assistant.quote_constraint`):

    Employees get eleven paid holidays in 2026 [2].
    [2] "All regular US employees, full-time and part-time, receive the following eleven paid holidays in 2026:"

- first the answer: short sentences, each ending with the number of the block it comes from, `[n]`;
- then one line per supporting quote: `[n] "sentence"`, the sentence copied verbatim from block n;
- or, when the blocks do not contain the answer, exactly `MODEL_REFUSAL` and nothing else.
Extractive on purpose: a small model copies a sentence far more reliably than it paraphrases one, and a copied
sentence can be checked against its block.

A sentence ends at `.`, `!` or `?` followed by whitespace and a `SENTENCE_OPENING` character (a capital letter, a
double quote, an opening parenthesis): "ext. 4357", "approx. two", "3.5 days" and "1. Open ... 2. Click" go on.
The same rule splits a document's paragraphs into the sentences a quote line may copy. The decoding grammar bans a
new sentence after one left uncited by that rule, and the check splits the answer by it: what the grammar lets
through, the check accepts, and what `render_answer` writes (a training target) is both.

Not covered here: whether a quote is verbatim or a citation placed (the check and the grammar decide that), and
the prompt around the answer (`assistant.prompt`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

MODEL_REFUSAL = "The documents I can see do not answer this."
# The characters that open a new sentence after `.`, `!` or `?` and whitespace.
SENTENCE_OPENING = 'A-Z"\u201c('
SENTENCE_END = re.compile(rf"(?<=[.!?])\s+(?=[{SENTENCE_OPENING}])")
CITATION = re.compile(r"\[(\d+)\]")  # `[n]`: a citation, or the start of a quote line
QUOTE_LINE = re.compile(r'^\[(\d+)\]\s*"(.+)"$')  # `[n] "sentence"`
CITED_SENTENCE = re.compile(r"\[\d+\][.!?]?$")  # a sentence (or an answer line so far) that ends cited
PROSE_QUOTE = re.compile(r"[\"\u201c]([^\"\u201d]{20,})[\"\u201d]")  # a quoted passage inside the answer's prose


def normalise_space(text: str) -> str:
    return " ".join(text.split())


def fold(text: str) -> str:
    """Whitespace and case aside: how quotes are compared with their blocks, and the refusal with its sentence."""
    return normalise_space(text).lower()


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(text.strip()) if s.strip()]


def render_answer(answer: str, quotes: Sequence[str], block: int) -> str:
    """An answer in the house format: every sentence of `answer` cites `block`, then each quote on its line."""
    cited = []
    for sentence in split_sentences(answer):
        body, end = (sentence[:-1], sentence[-1]) if sentence[-1] in ".!?" else (sentence, ".")
        cited.append(f"{body} [{block}]{end}")
    lines = [" ".join(cited)]
    lines += [f'[{block}] "{normalise_space(q)}"' for q in quotes]
    return "\n".join(lines)


def is_refusal(text: str) -> bool:
    """The model wrote the house refusal sentence (whitespace and case aside)."""
    return fold(text) == fold(MODEL_REFUSAL)


@dataclass(frozen=True)
class ParsedAnswer:
    statement: list[str]  # the answer's lines that are not quote lines, stripped, in order
    quotes: list[tuple[int, str]]  # (block as written, quote) of each quote line

    @property
    def prose(self) -> str:
        return "\n".join(self.statement)


def parse_answer(text: str) -> ParsedAnswer:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    statement: list[str] = []
    quotes: list[tuple[int, str]] = []
    for line in lines:
        match = QUOTE_LINE.match(line)
        if match:
            quotes.append((int(match.group(1)), match.group(2)))
        else:
            statement.append(line)
    return ParsedAnswer(statement, quotes)


def is_house_format(text: str, blocks: int) -> bool:
    """Sentences that each end with a [n] of a shown block, then one or more `[n] "quote"` lines; nothing else."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    first_quote = next((i for i, line in enumerate(lines) if QUOTE_LINE.match(line)), len(lines))
    statement, quotes = lines[:first_quote], lines[first_quote:]
    if not statement or not quotes:
        return False
    quoted = [QUOTE_LINE.match(line) for line in quotes]
    numbers = [int(m.group(1)) for m in quoted if m] + [int(n) for n in CITATION.findall(" ".join(statement))]
    return (
        all(quoted)
        and all(1 <= n <= blocks for n in numbers)
        and all(CITED_SENTENCE.search(sentence) for sentence in split_sentences(" ".join(statement)))
    )


def statement_text(prose: str) -> str:
    """The answer's prose without its citations: what token F1 is scored on."""
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", CITATION.sub("", prose)).strip()


_EMPHASIS = re.compile(r"\*\*|__")


def without_emphasis(text: str) -> str:
    """An answer with Markdown bold taken out of its statement lines (the model copies `**30 days**` from a
    block, and half of such a pair shows raw); quote lines stay verbatim, as their check compares them."""
    return "\n".join(line if QUOTE_LINE.match(line.strip()) else _EMPHASIS.sub("", line) for line in text.splitlines())


def statement_lines(text: str) -> str:
    """An answer's text without its quote lines: what a reader sees above the opened sources, and what the
    conversation history carries (a quote is the document's own text, not the answer)."""
    return "\n".join(line for line in text.splitlines() if not QUOTE_LINE.match(line.strip())).strip()
