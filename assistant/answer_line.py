"""An answer line that says what its first quote says.

The model writes its answer line in its own words and quotes sentences of the shown blocks; the citation check
verifies the quotes and `assistant.answer_support` labels the line. When the line is not labelled supported, what a
user reads first is often wrong while the sentence the evidence scorer ranks first is right: the model quoted the
right sentence and then restated a neighbouring one, stated it vaguely, or stated the right figure over a quote
that does not hold it. `mended_answer` rewrites such an answer around that sentence (with
`evidence.extract_unverified`, the default):

- the line names specifics (an amount, a time, a name) its quotes lack and the sentence holds them all: the line
  stays, quoting that sentence ("EUR 62 per full travel day" had quoted the US "$70" sentence while the EU one
  ranked first);
- otherwise the sentence becomes the answer line: the source's own words, cited.

The sentence is the first-ranked one of the shown blocks that is not a lead-in ending in ":" ("Nightly hotel caps
(before taxes):" says nothing by itself) or a pointer to text the line would not show ("listed below"). The
model's other verified quotes of the same block follow it (a quote of a block the line does not cite would not
verify), and the mended answer gets the label the same check gives it.
Nothing is invented: every word of a mended answer is the model's line or a sentence of a shown block. On the
everyday-language development set this took the answer line from 0.273 to 0.414 correct (docs/evaluation.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.answer_support import holds, points_elsewhere, specifics
from assistant.citation_check import CheckedText
from assistant.evidence import EvidenceSelection
from assistant.house_format import fold, render_answer, split_sentences, statement_text
from assistant.retriever import RetrievedChunk

_LIST_MARKER = re.compile(r"^(?:[-*+\u2022]|\d{1,3}[.)])\s+")
_MARKUP = re.compile(r"\*\*")


def mended_answer(
    checked: CheckedText, shown: Sequence[RetrievedChunk], selection: EvidenceSelection | None
) -> str | None:
    """The answer rewritten as above, in the house format over `shown` (block n = shown[n - 1]); None for a
    refusal, or with no scored sentence to quote."""
    if checked.refusal or selection is None or selection.top is None:
        return None
    block, sentence = next(((n, s) for n, s in selection.shown_ranking if not points_elsewhere(s)), selection.top)
    line = statement_text(checked.statement)
    named = specifics(line)
    verified = [q for q in checked.quotes if q.verified]
    unquoted = any(not any(holds(quote.text, specific) for quote in verified) for specific in named)
    # A line whose own quotes already hold its specifics and still does not verify restates the wrong part of
    # them (kept, it was right 13 times in 24 on the development set; replaced, more often): it gives way.
    keep_line = unquoted and all(holds(sentence, specific) for specific in named)
    others = [q.text for q in verified if q.block == block and fold(q.text) != fold(sentence)]
    return render_answer(line if keep_line else plain_line(sentence), [sentence, *others], block)


def plain_line(sentence: str) -> str:
    """A document's sentence as an answer line (its quote stays verbatim): without list markers ("- ", "4. "),
    markdown bold, a table row's cells joined ("| Fri, Nov 27 | Day after Thanksgiving |" ->
    "Fri, Nov 27 - Day after Thanksgiving"), and without a trailing fragment of a hard-wrapped line ("... even at
    night. IT will")."""
    text = _MARKUP.sub("", _LIST_MARKER.sub("", sentence.strip()))
    if text.startswith("|"):
        text = " - ".join(cell.strip() for cell in text.strip("|").split("|") if cell.strip())
    sentences = split_sentences(text)
    ended = [s for s in sentences if s[-1] in ".!?"]
    if ended and len(ended) < len(sentences) and sentences[-1][-1] not in ".!?":
        sentences = sentences[:-1]  # a fragment the line break cut off
    return " ".join(sentences) or sentence
