"""Copy-constrained decoding of quote lines: a quote the model writes is a sentence of the block it names.

The house format (see `assistant.prompt`) ends an answer with lines `[n] "sentence"`, the sentence copied from
block n. A 270M model, even tuned, often starts a real sentence and drifts a few words in ("paraphrase drift"),
and the citation check then rejects the quote. While the model writes such a line, this logits processor allows
only the tokens that keep the text after `[n]` a prefix of ` "<a sentence or line of block n>"`; everywhere else it
does nothing. The model still chooses which sentence to quote (its own scores rank the allowed tokens); it can no
longer misquote one. With greedy decoding this is a mask over at most a few dozen tokens per step.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import torch

from assistant.prompt import normalise_space, split_sentences

_QUOTE_START = re.compile(r"\[(\d+)\]")
_SHORTEST_QUOTE = 3  # words
_STANDS_ALONE = re.compile(r"^([|*+-]|\d+[.)])|[.!?:|]$")  # not the middle of a hard-wrapped sentence
_LONGEST_PIECE = 48  # characters; longer vocabulary pieces are whitespace runs and never inside a quote


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
        # A new line, or the end of the answer, after a quote (never a special token that decodes to nothing).
        self.line_ends: list[int] = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        for token_id, text in zip(vocabulary, texts, strict=True):
            text = text[len(anchor_text) :]
            if not text or "\ufffd" in text:  # a byte of a multi-byte character: never a whole piece of a quote
                continue
            if len(text) <= _LONGEST_PIECE:
                self.ids[text].append(token_id)
            if text.startswith('"') and len(text) > 1 and not text[1:].strip():
                self.closing.append(token_id)
            if text.startswith("\n"):
                self.line_ends.append(token_id)

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
    (hard-wrapped lines joined) and every line that stands alone (a table row, a list item, a line ending a
    sentence), of at least `_SHORTEST_QUOTE` words: a table cell or a heading supports nothing."""
    spans: list[str] = []
    for paragraph in re.split(r"\n\s*\n", block_text):
        spans += [s for s in split_sentences(normalise_space(paragraph)) if _STANDS_ALONE.search(s)]
        lines = [normalise_space(line) for line in paragraph.splitlines()]
        for line in (line for line in lines if _STANDS_ALONE.search(line)):
            spans += [line, *split_sentences(line)]
    return sorted({f' "{span}"' for span in spans if len(span.split()) >= _SHORTEST_QUOTE})


class QuoteConstraint:
    """A transformers logits processor (batch of one) over the text generated after `prompt_length` tokens."""

    def __init__(
        self,
        tokenizer: Any,
        block_texts: Sequence[str],
        prompt_length: int,
        exact_logits: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.pieces = piece_index(tokenizer)
        self.candidates = [quote_candidates(text) for text in block_texts]
        self.prompt_length = prompt_length
        # With the CPU shortlist head most logits are -inf: the allowed ones are then scored exactly.
        self.exact_logits = exact_logits

    def allowed(self, generated: str) -> list[int] | None:
        """Token ids allowed next, or None where no quote is being written (nothing is constrained)."""
        line = generated.rsplit("\n", 1)[-1].lstrip()
        match = _QUOTE_START.match(line)
        if not match or not 1 <= int(match.group(1)) <= len(self.candidates):
            return None
        written = line[match.end() :]
        candidates = self.candidates[int(match.group(1)) - 1]
        if written.rstrip() in candidates:
            return self.pieces.line_ends  # the quote is closed: its line ends here
        remaining = [c[len(written) :] for c in candidates if c.startswith(written)]
        if not remaining:
            return None  # the line went its own way before the constraint could act; the check will judge it
        allowed: set[int] = set()
        for rest in remaining:
            allowed.update(self.pieces.spelling_prefixes(rest))
            if rest == '"':
                allowed.update(self.pieces.closing)
        return sorted(allowed) or None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        generated = self.tokenizer.decode(
            input_ids[0, self.prompt_length :], skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
        allowed = self.allowed(generated)
        if allowed is None:
            return scores
        ids = torch.tensor(allowed, device=scores.device)
        kept = self.exact_logits(ids).to(scores.dtype) if self.exact_logits is not None else scores[0, ids]
        masked = torch.full_like(scores, float("-inf"))
        masked[0, ids] = kept
        return masked
