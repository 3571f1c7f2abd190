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


@dataclass(frozen=True)
class ContextBlock:
    title: str
    section: str | None
    text: str


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str


def render_prompt(
    question: str, blocks: Sequence[ContextBlock], history: Sequence[Turn] = (), *, max_history: int = 3
) -> str:
    parts = [INSTRUCTION, "", "Context:"]
    for n, block in enumerate(blocks, start=1):
        heading = block.title if not block.section else f"{block.title} - {block.section}"
        parts.append(f"[{n}] {heading}\n{block.text.strip()}")
    if not blocks:
        parts.append("(no approved documents)")
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
