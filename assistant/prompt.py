"""The one prompt template, for serving and for training examples, so the two can never disagree.

A prompt is: an instruction, numbered context blocks ([1], [2], ...) with title and section, an optional bounded
conversation history, the question, and the answer cue. Training examples are the same prompt followed by the
target answer and an end marker. The base model has no chat template: the adapter learns this format.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

INSTRUCTION = (
    "You are the company assistant. Answer the question using only the numbered context blocks. "
    "Cite every fact with the number of its block in square brackets, like [1]. "
    "If the blocks do not contain the answer, say that you cannot find it in the approved documents."
)
ANSWER_CUE = "Answer:"
END_OF_ANSWER = "<end_of_answer>"
# Generation stops at the end marker, or where a base model starts writing the next question itself.
STOP_MARKERS = (END_OF_ANSWER, "\nQuestion:")


@dataclass(frozen=True)
class ContextBlock:
    title: str
    section: str | None
    text: str


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str


@dataclass(frozen=True)
class Example:
    """A worked example shown before the question: how a base model without an adapter learns the format."""

    question: str
    blocks: tuple[ContextBlock, ...]
    answer: str


# Generic on purpose (no company facts): they teach the format, never the content.
FEW_SHOT = (
    Example(
        "How long is the warranty on the X100 printer?",
        (
            ContextBlock("Printer guide", "Warranty", "The X100 printer has a two-year warranty from delivery."),
            ContextBlock("Printer guide", "Toner", "Toner cartridges are not covered by the warranty."),
        ),
        "The X100 has a two-year warranty from delivery [1]; toner cartridges are not covered [2].",
    ),
    Example(
        "Who approves conference travel?",
        (ContextBlock("Office guide", "Parking", "Visitors park in the east lot."),),
        "I cannot find this in the approved documents.",
    ),
)


def _context(blocks: Sequence[ContextBlock]) -> list[str]:
    lines = ["Context:"]
    for n, block in enumerate(blocks, start=1):
        heading = block.title if not block.section else f"{block.title} - {block.section}"
        lines.append(f"[{n}] {heading}\n{block.text.strip()}")
    if not blocks:
        lines.append("(no approved documents)")
    return lines


def render_prompt(
    question: str,
    blocks: Sequence[ContextBlock],
    history: Sequence[Turn] = (),
    *,
    max_history: int = 3,
    examples: Sequence[Example] = (),
) -> str:
    parts = [INSTRUCTION, ""]
    for example in examples:
        parts += _context(example.blocks)
        parts += ["", f"Question: {example.question}", f"{ANSWER_CUE} {example.answer}", END_OF_ANSWER, ""]
    parts += _context(blocks)
    recent = list(history)[-max_history:] if max_history > 0 else []
    if recent:
        parts += ["", "Conversation so far:"]
        for turn in recent:
            parts += [f"Q: {turn.question.strip()}", f"A: {turn.answer.strip()}"]
    parts += ["", f"Question: {question.strip()}", ANSWER_CUE]
    return "\n".join(parts)


def render_training_example(
    question: str, blocks: Sequence[ContextBlock], answer: str, history: Sequence[Turn] = ()
) -> tuple[str, str]:
    """(prompt, completion): the loss is taken on the completion only."""
    return render_prompt(question, blocks, history), f" {answer.strip()}\n{END_OF_ANSWER}"
