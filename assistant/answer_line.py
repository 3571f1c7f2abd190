"""An answer line that says what its first quote says.

The model writes its answer line in its own words and quotes sentences of the shown blocks; the citation check
verifies the quotes and `assistant.answer_support` labels the line. When the line is not labelled supported, what a
user reads first is often wrong while a quote or the scorer's first sentence is right: the model quoted the right
sentence and then restated a neighbouring one, stated it vaguely, or stated the right figure over a quote that
does not hold it. `mended_answer` rewrites such an answer (with `evidence.extract_unverified`, the default):

- the line names specifics (an amount, a time, a name) and a sentence of the shown blocks holds them all: the line
  stays and that sentence, the best-ranked such, becomes its quote ("EUR 62 per full travel day" had quoted the
  US "$70" sentence while the EU one was in the block);
- otherwise the sentence the evidence scorer ranks first becomes the answer line and its first quote: the
  source's own words, cited, under the label the same check gives it. The model's other verified quotes of the
  same block follow (a quote of a block the line does not cite would not verify).

Nothing is invented: every word of a mended answer is the model's line or a sentence of a shown block.
"""

from __future__ import annotations

from collections.abc import Sequence

from assistant.answer_support import holds, specifics
from assistant.citation_check import CheckedText
from assistant.evidence import EvidenceSelection, block_sentences
from assistant.house_format import fold, render_answer, statement_text
from assistant.retriever import RetrievedChunk


def mended_answer(
    checked: CheckedText, shown: Sequence[RetrievedChunk], selection: EvidenceSelection | None
) -> str | None:
    """The answer rewritten as above, in the house format over `shown` (block n = shown[n - 1]); None for a
    refusal, or with no scored sentence to quote."""
    if checked.refusal or selection is None or selection.top is None:
        return None
    line = statement_text(checked.statement)
    holding = holding_sentence(specifics(line), shown, selection)
    if holding is not None:
        block, sentence = holding
        return render_answer(line, [sentence], block)
    block, sentence = selection.top
    others = [q.text for q in checked.quotes if q.verified and q.block == block and fold(q.text) != fold(sentence)]
    return render_answer(sentence, [sentence, *others], block)


def holding_sentence(
    wanted: Sequence[str], shown: Sequence[RetrievedChunk], selection: EvidenceSelection
) -> tuple[int, str] | None:
    """The best-ranked quotable sentence of the shown blocks that holds every one of `wanted` (answer-line
    specifics), with its block number; None when `wanted` is empty or no sentence holds them all."""
    if not wanted:
        return None
    found = [
        (n, sentence)
        for n, chunk in enumerate(shown, 1)
        for sentence in block_sentences(chunk.text)
        if all(holds(sentence, specific) for specific in wanted)
    ]
    rank = {text: position for position, text in enumerate(selection.scores)}
    return min(found, key=lambda f: rank.get(fold(f[1]), len(rank)), default=None)
