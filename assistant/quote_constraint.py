"""Constrained decoding of the house answer format (see `assistant.house_format`): the model still chooses every word;
a logits processor only removes the tokens that would break the format.

- Quote lines are copied: while the model writes `[n] "...`, only tokens that keep the text a prefix of
  ` "<a sentence or line of block n>"` are allowed (a 270M model, even tuned, otherwise starts a real sentence and
  drifts a few words in, and the citation check rejects the quote).
- The answer line is at most `_LONGEST_ANSWER` words: past them it must cite, then end (a 270M model can loop).
- The answer line cannot end before it cites: no new line and no end of answer until it ends with `[n]`, and
  no new sentence after a sentence that does not end with one (a sentence ends by the house format's one rule:
  `house_format.SENTENCE_OPENING`); after `. ` the model may still go on, or cite.
- After it, each line is a quote line of a block the answer cites, or the end of the answer (after at least one
  quote, or after the refusal sentence).
- When the evidence scorer has decided the blocks answer the question (`refusal_allowed=False`), the answer line
  may not spell out the house refusal: whether to refuse is the scorer's and the recall gate's call, not the
  model's; and citations go only to the blocks holding the scorer's best sentences (`preferred_quotes`), which
  are then the only sentences to quote.
- With `attribute_citations`, the number written inside `[` is limited to the blocks that contain most of the
  words of the sentence it closes (when some block holds at least half of them; among blocks with a sentence to
  quote): a small model copies the right sentence far more often than it picks the right block number. A
  sentence too short or too generic to decide ("No [", "The evidence supports the claim [") goes to the block
  the retriever ranked first (the blocks come in its order). Likewise a quote line of block n may only start one of the
  sentences of block n that hold most of the words of a claim citing n (else of the question), and never repeats
  a quote: the quote is the evidence a reader checks, so it must be the sentence the answer rests on.
The citation check reads the same decision back (`cited_claims`): a citation the grammar could only give by
fallback, and a quote of a block no claim is placed in, are never shown as verified.
With greedy decoding each step is a mask over a few dozen tokens, or a ban of the line-ending ones.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from assistant.house_format import (
    CITATION,
    CITED_SENTENCE,
    MODEL_REFUSAL,
    SENTENCE_OPENING,
    is_refusal,
    normalise_space,
    split_sentences,
)
from assistant.prompt import END_OF_ANSWER

if TYPE_CHECKING:  # imported where decoding runs: the citation check uses this module without torch
    import torch

_OPEN_CITATION = re.compile(r"\[\d+$")
_CLOSED_QUOTE = re.compile(r'^\[\d+\] ".*"$')
_SENTENCE_ENDED = re.compile(r"[.!?]$")
_SENTENCE_ENDED_SPACED = re.compile(r"[.!?]\s+$")
_OPENS_SENTENCE = re.compile(rf"[{SENTENCE_OPENING}]")
_SPACE_OPENS_SENTENCE = re.compile(rf"\s+[{SENTENCE_OPENING}]")
SHORTEST_QUOTE = 3  # words
_LONGEST_QUOTE = 60  # words; a longer "sentence" is a run of list items glued together by the document's layout
_STANDS_ALONE = re.compile(r"^([|*+-]|\d+[.)])|[.!?:|]$")  # not the middle of a hard-wrapped sentence
# A Markdown list item starts a line: its text never runs on into the next item's (no "...day. - EU travel: ...").
_LIST_ITEM_START = re.compile(r"\n(?=[ \t]*(?:[-*+]|\d+[.)])[ \t])")
_BULLETS = re.compile(r"\s*[\u2022\u25cf\u25aa\u007f]\s*")  # list bullets that PDF and Word text keeps inline
_LONGEST_ANSWER = 60  # words of the answer line (the curated answers have at most 26): past it, cite and end the line
_LONGEST_PIECE = 48  # characters; longer vocabulary pieces are whitespace runs and never inside a quote
_WORD = re.compile(r"[a-z0-9$%\u20ac\u00a3]+(?:[.,:][0-9]+)*")
_FILLER_WORDS = (
    "a an the of to in on for and or is are was be you your it its at by with from as that this can do does i we "
    "our per each any all if not no yes"
)
_FILLER = frozenset(_FILLER_WORDS.split())
_ATTRIBUTED = 0.5  # the share of a sentence's words a block must hold to attract its citation
# An answer may open like the refusal ("The documents ..."); past these words it would be the refusal.
_REFUSAL_OPENING = len("The documents")


ENGINE_ARG = "house_format"  # the engine request's vllm_xargs key holding the FormatRequest as JSON


@dataclass(frozen=True)
class FormatRequest:
    """What the house-format constraint needs for one answer, as plain data (a serving engine gets it as JSON):
    the shown blocks' texts in order, the question, the evidence scorer's best sentences per block (1-based) and
    whether the model may refuse; `attribute_citations` is the generator setting of that name."""

    blocks: tuple[str, ...]
    question: str = ""
    preferred_quotes: Mapping[int, frozenset[str]] = field(default_factory=dict)
    refusal_allowed: bool = True
    attribute_citations: bool = True

    @classmethod
    def of(
        cls,
        blocks: Sequence[str],
        question: str = "",
        preferred_quotes: Mapping[int, Collection[str]] | None = None,
        *,
        refusal_allowed: bool = True,
        attribute_citations: bool = True,
    ) -> FormatRequest:
        preferred = {int(k): frozenset(v) for k, v in (preferred_quotes or {}).items()}
        return cls(tuple(blocks), question, preferred, refusal_allowed, attribute_citations)

    def to_json(self) -> dict[str, Any]:
        return {
            "blocks": list(self.blocks),
            "question": self.question,
            "preferred_quotes": {str(k): sorted(v) for k, v in self.preferred_quotes.items()},
            "refusal_allowed": self.refusal_allowed,
            "attribute_citations": self.attribute_citations,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FormatRequest:
        return cls.of(
            [str(b) for b in data["blocks"]],
            str(data.get("question", "")),
            {int(k): [str(q) for q in v] for k, v in (data.get("preferred_quotes") or {}).items()},
            refusal_allowed=bool(data.get("refusal_allowed", True)),
            attribute_citations=bool(data.get("attribute_citations", True)),
        )


class PieceIndex:
    """The tokenizer's vocabulary as text: which token ids spell a given string exactly."""

    def __init__(self, tokenizer: Any) -> None:
        # A token's text is what it adds after an anchor token: this keeps the leading space SentencePiece and
        # byte-level BPE pieces carry, which decoding a token alone may drop.
        anchor = tokenizer("a", add_special_tokens=False)["input_ids"][-1]
        anchor_text = tokenizer.decode([anchor])
        special = set(tokenizer.all_special_ids)
        vocabulary = [t for t in range(len(tokenizer)) if t not in special]
        texts = tokenizer.batch_decode([[anchor, t] for t in vocabulary], clean_up_tokenization_spaces=False)
        self.ids: dict[str, list[int]] = defaultdict(list)
        self.closing: list[int] = []  # `"` followed only by whitespace: a quote may end with its line
        self.end: list[int] = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        self.line_ends: list[int] = list(self.end)  # a new line (nothing else on it yet), or the end of the answer
        self.line_breaking: list[int] = list(self.end)  # every token that ends the line it is written on
        spaced_openers: list[int] = []  # " The": would start a new sentence after ". "
        openers: list[int] = []  # "The": the same after a space
        for token_id, text in zip(vocabulary, texts, strict=True):
            text = text[len(anchor_text) :]
            if not text or "\ufffd" in text:  # a byte of a multi-byte character: never a whole piece of a quote
                continue
            if len(text) <= _LONGEST_PIECE:
                self.ids[text].append(token_id)
            if text.startswith('"') and len(text) > 1 and not text[1:].strip():
                self.closing.append(token_id)
            if "\n" in text:
                self.line_breaking.append(token_id)
                if not text.strip():
                    self.line_ends.append(token_id)
            elif _SPACE_OPENS_SENTENCE.match(text):
                spaced_openers.append(token_id)
            elif _OPENS_SENTENCE.match(text):
                openers.append(token_id)
        self.new_line = [t for t in self.line_ends if t not in self.end]  # a line break and nothing else
        self.line_breaking += self.spelling_prefixes(END_OF_ANSWER)
        # After an uncited sentence end (". " or "."), what may not come next: a new sentence or the line's end.
        self.after_uncited_end = self.line_breaking + spaced_openers
        self.after_uncited_end_space = self.after_uncited_end + openers

    def spelling_prefixes(self, text: str) -> list[int]:
        """Ids of the tokens whose text is a non-empty prefix of `text`."""
        found: list[int] = []
        for size in range(1, min(len(text), _LONGEST_PIECE) + 1):
            found += self.ids.get(text[:size], ())
        return found


_BUILDING = threading.Lock()  # the first sessions of an app would otherwise each build it


@cache
def _piece_index(tokenizer: Any) -> PieceIndex:
    return PieceIndex(tokenizer)


def piece_index(tokenizer: Any) -> PieceIndex:
    """Built once per tokenizer (~1 s for Gemma's 262k pieces)."""
    with _BUILDING:
        return _piece_index(tokenizer)


def quote_candidates(block_text: str) -> list[str]:
    """What may follow `[n]` on a quote line of block n: ` "sentence"` for every sentence of every paragraph
    (hard-wrapped lines joined, a list item never joined to the next, inline list bullets splitting) and every
    line that stands alone (a table row, a list item, a line ending a sentence), of `SHORTEST_QUOTE` to
    `_LONGEST_QUOTE` words: a table cell or a heading supports nothing, and a page of glued list items is no
    sentence."""
    spans: list[str] = []
    for paragraph in re.split(r"\n\s*\n", block_text):
        for part in (p for item in _LIST_ITEM_START.split(paragraph) for p in _BULLETS.split(item)):
            spans += [s for s in split_sentences(normalise_space(part)) if _STANDS_ALONE.search(s)]
            lines = [normalise_space(line) for line in part.splitlines()]
            for line in (line for line in lines if _STANDS_ALONE.search(line)):
                spans += [line, *split_sentences(line)]
    return sorted({f' "{span}"' for span in spans if SHORTEST_QUOTE <= len(span.split()) <= _LONGEST_QUOTE})


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _FILLER}


class QuoteConstraint:
    """A transformers logits processor (batch of one) over the text generated after `prompt_length` tokens."""

    def __init__(
        self,
        tokenizer: Any,
        block_texts: Sequence[str],
        prompt_length: int,
        exact_logits: Callable[[torch.Tensor | None], torch.Tensor] | None = None,
        *,
        question: str = "",
        attribute_citations: bool = True,
        preferred_quotes: Mapping[int, Collection[str]] | None = None,
        refusal_allowed: bool = True,
    ) -> None:
        self.tokenizer = tokenizer
        self.refusal_allowed = refusal_allowed
        # The evidence scorer's best sentences (block -> sentences): a block holding some may quote only those.
        self.preferred = {k: {f' "{q}"' for q in quotes} for k, quotes in (preferred_quotes or {}).items()}
        self.pieces = piece_index(tokenizer)
        self.candidates = [quote_candidates(text) for text in block_texts]
        self.candidate_words = [[content_words(c) for c in candidates] for candidates in self.candidates]
        # A block with no sentence to quote (a glued table, a heading) cannot back a citation's quote line.
        self.blocks_with_quotes = [k for k, candidates in enumerate(self.candidates, start=1) if candidates]
        if self.preferred:  # the scorer's best sentences are the evidence: only their blocks may be cited
            preferred_blocks = [k for k in self.blocks_with_quotes if k in self.preferred]
            self.blocks_with_quotes = preferred_blocks or self.blocks_with_quotes
        self.block_words = [content_words(text) for text in block_texts]
        self.question_words = content_words(question)
        self.prompt_length = prompt_length
        # With the CPU shortlist head most logits are -inf: the allowed ones are then scored exactly.
        self.exact_logits = exact_logits
        self.attribute_citations = attribute_citations

    @classmethod
    def for_request(
        cls,
        tokenizer: Any,
        request: FormatRequest,
        prompt_length: int,
        exact_logits: Callable[[torch.Tensor | None], torch.Tensor] | None = None,
    ) -> QuoteConstraint:
        return cls(
            tokenizer,
            request.blocks,
            prompt_length,
            exact_logits,
            question=request.question,
            attribute_citations=request.attribute_citations,
            preferred_quotes=request.preferred_quotes,
            refusal_allowed=request.refusal_allowed,
        )

    # -- what may come next ---------------------------------------------------------------------------
    def constrain(self, generated: str) -> tuple[list[int], bool] | None:
        """(token ids, True: only these | False: any but these) for the next token; None: anything."""
        lines = generated.split("\n")
        if len(lines) == 1:
            return self._answer_line(lines[0])
        quote = self.allowed(generated)
        if quote is not None:
            return quote, True
        return self._line_start(lines[0].strip(), [line.strip() for line in lines[1:-1]], lines[-1].lstrip())

    def _answer_line(self, line: str) -> tuple[list[int], bool] | None:
        text = line.strip()
        if text.endswith("[") and self.attribute_citations:
            claim, run = _claim_closed(text[:-1])  # "... claim [2][": block 2 already backs this claim
            supporting = self.supporting_blocks(claim)
            others = [k for k in self.blocks_with_quotes if k not in run]
            blocks = [k for k in supporting if k not in run] or others or supporting
            return self._citing(blocks), True
        if len(text.split()) >= _LONGEST_ANSWER and not is_refusal(text):  # a line running on (a repeating loop)
            if CITED_SENTENCE.search(text):
                return self.pieces.new_line, True
            if text.endswith("["):  # (with attribute_citations the branch above picked the block)
                return self._citing(self.blocks_with_quotes), True
            if _OPEN_CITATION.search(text):
                return self.pieces.spelling_prefixes("]"), True
            return self.pieces.spelling_prefixes("[" if line.endswith(" ") else " ["), True
        if not text or CITED_SENTENCE.search(text) or is_refusal(text):
            return None
        refusing = self._refusal_continuations(line)
        if _SENTENCE_ENDED.search(line):  # "... dev)." goes on, or cites: "dev). [1]"
            return self.pieces.after_uncited_end + refusing, False
        if _SENTENCE_ENDED_SPACED.search(line):
            return self.pieces.after_uncited_end_space + refusing, False
        return self.pieces.line_breaking + refusing, False  # the answer may not end before it cites a block

    def _citing(self, blocks: Sequence[int]) -> list[int]:
        """After `[`: the tokens that start `k]` for one of `blocks`."""
        return sorted({t for k in blocks for t in self.pieces.spelling_prefixes(f"{k}]")})

    def _refusal_continuations(self, line: str) -> list[int]:
        """With the refusal not allowed: the tokens that would carry a line already opening like the refusal on
        towards it (none before its opening words: an answer may begin "The ...")."""
        written = line.lstrip()
        if self.refusal_allowed or len(written) < _REFUSAL_OPENING or not MODEL_REFUSAL.startswith(written):
            return []
        return self.pieces.spelling_prefixes(MODEL_REFUSAL[len(written) :])

    def _line_start(self, answer: str, done: list[str], line: str) -> tuple[list[int], bool] | None:
        """A line after the answer: a quote line `[k]` of a block the answer cites that has something left to
        quote, or the end (after a quote, or when nothing can be quoted)."""
        if CITATION.match(line):
            return None  # the quote went its own way before the constraint could act; the check will judge it
        if is_refusal(answer):
            targets = [END_OF_ANSWER]
        else:
            cited = sorted({int(n) for n in CITATION.findall(answer) if 1 <= int(n) <= len(self.candidates)})
            targets = [f"[{k}]" for k in cited or range(1, len(self.candidates) + 1) if self.quotable(k, answer, done)]
            if not targets or any(_CLOSED_QUOTE.match(d) for d in done):  # quoted, or nothing left to quote
                targets.append(END_OF_ANSWER)
        remaining = [t[len(line) :] for t in targets if t.startswith(line) and len(t) > len(line)]
        if not remaining:
            return None
        allowed = {token for rest in remaining for token in self.pieces.spelling_prefixes(rest)}
        if END_OF_ANSWER in targets and not line:
            allowed.update(self.pieces.end)
        return sorted(allowed), True

    def supporting_blocks(self, sentence: str) -> list[int]:
        """The blocks (1-based) that hold the most of the sentence's words, when one holds at least
        `_ATTRIBUTED` of them; else the retriever's best block with a sentence to quote (blocks come in the
        retriever's order): a sentence too short or generic to place ("No", "The evidence supports the claim")
        rests on what the question asked, and the retriever judges that better than shared words or the model
        (`benchmarks/citation_fallback.py`)."""
        with_quotes = self.blocks_with_quotes
        best = _placed(sentence, self.block_words, with_quotes)
        if best:
            return best
        return with_quotes[:1] or ([1] if self.block_words else [])

    def quotable(self, block: int, answer: str, done: Sequence[str]) -> list[str]:
        """The quote candidates of `block` (1-based) not quoted yet; with `attribute_citations`, only those that
        hold the most words of a claim citing the block (each claim its own winners; else the question's), when
        one holds at least `_ATTRIBUTED` of them: the quote is there to support what the answer says."""
        quoted = set()
        for line in (d.strip() for d in done):
            match = CITATION.match(line)
            if match and int(match.group(1)) == block:
                quoted.add(line[match.end() :])
        fresh = [i for i, c in enumerate(self.candidates[block - 1]) if c not in quoted]
        best_scored = [i for i in fresh if self.candidates[block - 1][i] in self.preferred.get(block, ())]
        if best_scored:
            return [self.candidates[block - 1][i] for i in best_scored]
        if self.attribute_citations and fresh:
            words_of = [self.candidate_words[block - 1][i] for i in fresh]
            best = {i for claim in _claims_citing(answer, block) for i in most_shared(content_words(claim), words_of)}
            best = best or set(most_shared(self.question_words, words_of))
            if best:
                fresh = [fresh[i] for i in sorted(best)]
        return [self.candidates[block - 1][i] for i in fresh]

    def allowed(self, generated: str) -> list[int] | None:
        """Token ids allowed next on a quote line, or None where no quote is being written."""
        lines = generated.split("\n")
        line = lines[-1].lstrip()
        match = CITATION.match(line)
        if len(lines) < 2 or not match or not 1 <= int(match.group(1)) <= len(self.candidates):
            return None
        written = line[match.end() :]
        candidates = self.quotable(int(match.group(1)), lines[0], lines[1:-1])
        closed = written.rstrip() in candidates
        remaining = [c[len(written) :] for c in candidates if c.startswith(written) and len(c) > len(written)]
        if closed and not remaining:
            return self.pieces.line_ends  # the quote is closed: its line ends here
        if not remaining:
            return None  # the line went its own way before the constraint could act; the check will judge it
        allowed: set[int] = set(self.pieces.line_ends) if closed else set()  # or a longer candidate goes on
        for rest in remaining:
            allowed.update(self.pieces.spelling_prefixes(rest))
            if rest == '"':
                allowed.update(self.pieces.closing)
        return sorted(allowed) or None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """transformers' logits-processor call: the batch of one's tokens after the prompt decide the mask."""
        return self.mask(self.decoded(input_ids[0, self.prompt_length :].tolist()), scores)

    def decoded(self, token_ids: Sequence[int]) -> str:
        """The answer so far, as the rules read it."""
        return str(self.tokenizer.decode(token_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False))

    def mask(self, generated: str, scores: torch.Tensor) -> torch.Tensor:
        """`scores` (1 x vocabulary) with every token that would break the format after `generated` at -inf."""
        import torch

        constraint = self.constrain(generated)
        if constraint is None:
            return scores
        ids, only = constraint
        index = torch.tensor(ids, dtype=torch.long, device=scores.device)
        if not only:
            banned = scores.clone()
            banned[0, index] = float("-inf")
            if self.exact_logits is not None and bool(torch.isneginf(banned).all()):
                # The shortlist held only banned tokens: score every token exactly, then ban.
                banned[0] = self.exact_logits(None).to(scores.dtype)
                banned[0, index] = float("-inf")
            return banned
        if not ids:
            return scores
        kept = self.exact_logits(index).to(scores.dtype) if self.exact_logits is not None else scores[0, index]
        masked = torch.full_like(scores, float("-inf"))
        masked[0, index] = kept
        return masked


def _placed(sentence: str, block_words: Sequence[set[str]], with_quotes: Sequence[int]) -> list[int]:
    """The blocks (1-based) a sentence's words place its citation in (among blocks with a sentence to quote);
    empty: none holds enough of them, and the grammar falls back."""
    best = [k + 1 for k in most_shared(content_words(sentence), block_words)]
    return [k for k in best if k in with_quotes] if with_quotes else best


@dataclass(frozen=True)
class CitedClaim:
    claim: str  # the text the citation closes (since the previous run of citations)
    block: int
    placed: bool  # the block holds the most of the claim's words; False: only the grammar's fallback names it


def cited_claims(answer: str, block_texts: Sequence[str]) -> list[CitedClaim]:
    """Each citation `[n]` of a block of `block_texts` in `answer`, with the claim it closes and whether the claim's
    words place it in that block, as the grammar decides (`QuoteConstraint.supporting_blocks`). A citation not
    placed is one the grammar gave by fallback (a sentence too short or too foreign to any block: the retriever's
    best block; or a second citation of a claim): it shows where the model looked, not that the block says it."""
    block_words = [content_words(text) for text in block_texts]
    with_quotes = [k for k, text in enumerate(block_texts, start=1) if quote_candidates(text)]
    parts = CITATION.split(answer)  # text, number, text, number, ..., text
    claims: list[CitedClaim] = []
    claim = ""
    for i in range(0, len(parts) - 1, 2):
        if parts[i].strip(" .!?"):  # text since the last citation: a new claim; else the run of citations goes on
            claim = parts[i]
        n = int(parts[i + 1])
        if 1 <= n <= len(block_texts):
            placed = n in _placed(claim, block_words, with_quotes) or _lone_figure_in(claim, block_words[n - 1])
            claims.append(CitedClaim(claim, n, placed))
    return claims


def _lone_figure_in(claim: str, held: set[str]) -> bool:
    """A claim that is one figure ("$155 [1].", asked the hotel cap in Reno) and the block holding it: too short
    for shared words to place, and a figure is what a block either holds or does not."""
    words = content_words(claim)
    return len(words) == 1 and any(c.isdigit() for c in next(iter(words))) and words <= held


def _claim_closed(text: str) -> tuple[str, set[int]]:
    """The claim a citation about to be written closes (the text before the run of citations it joins), and the
    blocks that run already cites."""
    parts = CITATION.split(text)  # text, number, text, number, ..., text
    run: set[int] = set()
    while len(parts) >= 3 and not parts[-1].strip(" .!?"):
        run.add(int(parts[-2]))
        parts = parts[:-2]
    return parts[-1], run


def _claims_citing(answer: str, block: int) -> list[str]:
    """The answer's claims that cite `block`: the text before each `[block]`, or before the run of citations it
    closes ("... [1][2]." gives block 2 the same claim as block 1)."""
    parts = CITATION.split(answer)  # text, number, text, number, ..., text
    claims: list[str] = []
    claim = ""
    for i in range(0, len(parts) - 1, 2):
        if content_words(parts[i]):
            claim = parts[i]
        if int(parts[i + 1]) == block and claim:
            claims.append(claim)
    return claims


def most_shared(words: set[str], holders: Sequence[set[str]]) -> list[int]:
    """Indexes of the holders sharing the most of `words`, if one shares at least `_ATTRIBUTED` of them (and there
    are 2 words or more to judge by); else none."""
    if len(words) < 2:
        return []
    shares = [len(words & held) / len(words) for held in holders]
    best = max(shares, default=0.0)
    return [i for i, share in enumerate(shares) if share >= best - 1e-9] if best >= _ATTRIBUTED else []
