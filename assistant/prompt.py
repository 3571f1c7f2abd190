"""The one prompt template and the one answer format, for serving and for training, so the two never disagree.

A prompt is: an instruction, numbered context blocks ([1], [2], ...) with title and section, an optional bounded
conversation history (answers without their quote lines), the question, and the answer cue. A training example
is the same prompt followed by the target answer in the house format and the end marker. The base model has no
chat template: the adapter learns this format; without an adapter, worked examples in the same format are shown
first.

The answer format (`render_answer`, the refusal sentence, quote lines) is `assistant.house_format`'s; this module
only places it in a prompt. `template_hash` identifies both: an adapter trained under another hash is not served.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

# The house format's names, also read from here by training data, ingestion and reviews.
from assistant.house_format import MODEL_REFUSAL as MODEL_REFUSAL
from assistant.house_format import QUOTE_LINE as QUOTE_LINE
from assistant.house_format import normalise_space as normalise_space
from assistant.house_format import render_answer as render_answer
from assistant.house_format import statement_lines as statement_lines

INSTRUCTION = (
    "You are the company assistant. Answer the question using only the numbered context blocks. "
    "Write a short answer and end each sentence with the number of its block in square brackets, like [1]. "
    "Then, on a new line for each, write the block number and copy the sentence that supports the answer, "
    'word for word, in double quotes, like [1] "...". '
    "If the blocks do not contain the answer, write only: The documents I can see do not answer this."
)
TUNED_INSTRUCTION = "Answer from the numbered blocks, citing [n] and quoting the supporting sentence."
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
    """A past exchange of the conversation. The prompt carries its answer without quote lines, and the answering
    pipeline carries it only while the principal may still read every document it `cited` (none: not carried)."""

    question: str
    answer: str
    cited: tuple[str, ...] = ()  # doc ids of the answer's citations


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
            ContextBlock("Printer guide", "Toner", "Toner cartridges are not covered by the warranty."),
            ContextBlock(
                "Printer guide",
                "Warranty",
                "Every printer is inspected before shipping. The X100 printer has a two-year warranty from delivery.",
            ),
        ),
        render_answer(
            "The X100 has a two-year warranty from delivery.",
            ["The X100 printer has a two-year warranty from delivery."],
            2,
        ),
    ),
    Example(
        "Who approves conference travel?",
        (ContextBlock("Office guide", "Parking", "Visitors park in the east lot. Staff park in the north garage."),),
        MODEL_REFUSAL,
    ),
    Example(
        "can i bring my dog to the office?",
        (
            ContextBlock(
                "Office guide",
                "Pets",
                "Dogs are welcome in the Lisbon office on Fridays. They must stay on a leash in shared areas.",
            ),
            ContextBlock("Office guide", "Kitchen", "The kitchen is cleaned every evening."),
        ),
        render_answer(
            "Yes, on Fridays in the Lisbon office. Dogs must stay on a leash in shared areas.",
            [
                "Dogs are welcome in the Lisbon office on Fridays.",
                "They must stay on a leash in shared areas.",
            ],
            1,
        ),
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


def _conversation(history: Sequence[Turn], max_history: int) -> list[str]:
    """The last `max_history` turns, each answer without its quote lines; nothing without history."""
    recent = list(history)[-max_history:] if max_history > 0 else []
    if not recent:
        return []
    lines = ["", "Conversation so far:"]
    for turn in recent:
        lines += [f"Q: {turn.question.strip()}", f"A: {statement_lines(turn.answer)}"]
    return lines


def render_prompt(
    question: str,
    blocks: Sequence[ContextBlock],
    history: Sequence[Turn] = (),
    *,
    max_history: int = 3,
    examples: Sequence[Example] = (),
    instruction: str = INSTRUCTION,
) -> str:
    parts = [instruction, ""]
    for example in examples:
        parts += _context(example.blocks)
        parts += ["", f"Question: {example.question}", f"{ANSWER_CUE} {example.answer}", END_OF_ANSWER, ""]
    parts += [*_context(blocks), *_conversation(history, max_history)]
    parts += ["", f"Question: {question.strip()}", ANSWER_CUE]
    return "\n".join(parts)


def chat_messages(
    question: str,
    blocks: Sequence[ContextBlock],
    history: Sequence[Turn] = (),
    *,
    max_history: int = 3,
    examples: Sequence[Example] = (),
) -> list[dict[str, str]]:
    """The plain prompt's parts as chat turns, for an instruct model's own template: the instruction as the system
    turn, each worked example as a user turn and the assistant's answer, then the blocks and the question."""
    messages = [{"role": "system", "content": INSTRUCTION}]
    for example in examples:
        messages.append(
            {"role": "user", "content": "\n".join([*_context(example.blocks), "", f"Question: {example.question}"])}
        )
        messages.append({"role": "assistant", "content": example.answer})
    parts = [*_context(blocks), *_conversation(history, max_history), "", f"Question: {question.strip()}"]
    messages.append({"role": "user", "content": "\n".join(parts)})
    return messages


def render_tuned_prompt(
    question: str, blocks: Sequence[ContextBlock], history: Sequence[Turn] = (), *, max_history: int = 3
) -> str:
    """The short prompt an adapter is trained and served with: no worked examples, a one-line instruction."""
    return render_prompt(question, blocks, history, max_history=max_history, instruction=TUNED_INSTRUCTION)


def render_training_example(
    question: str, blocks: Sequence[ContextBlock], answer: str, history: Sequence[Turn] = ()
) -> tuple[str, str]:
    """(prompt, completion) for the adapter: the loss is taken on the completion only."""
    return render_tuned_prompt(question, blocks, history), f" {answer.strip()}\n{END_OF_ANSWER}"


def template_hash() -> str:
    """Identifies how prompts and answers are rendered: an adapter trained under another hash is not served."""
    blocks = [ContextBlock("Title", "Section", "Block text."), ContextBlock("Other", None, "More text.")]
    prompt, completion = render_training_example(
        "Question?", blocks, render_answer("An answer.", ["Block text."], 1), [Turn("Before?", "Then.")]
    )
    canonical = "\x00".join((prompt, completion, MODEL_REFUSAL, *STOP_MARKERS))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
