"""Text in a document that speaks to the assistant instead of to a reader: flagged at ingest for its owner.

A readable document can carry instructions ("ignore all previous instructions and ...") or lines forged in the
house answer format (`[2] "..."`, the end marker), hoping the model repeats them as a cited answer. Such a
document is still indexed (its readers may need it, and only its owner can tell a policy that quotes an attack
from an attack); the sync summary and the corpus page flag it with the passage, so a person decides.

Not covered: paraphrased or encoded instructions, other languages, and text in images. This is a tripwire for
the plain attempts, not a guarantee; what holds whatever a document says is in docs/security.md
(citations only to blocks the user may read, quotes checked verbatim, document text never rendered as markup).
"""

from __future__ import annotations

import re

from assistant.prompt import END_OF_ANSWER, QUOTE_LINE

_SIGNS = [
    (
        "an instruction to the assistant",
        re.compile(
            r"\b(?:ignore|disregard|forget|override)\b[^.\n]{0,40}?\b(?:previous|prior|above|earlier|all|your|"
            r"system)\b[^.\n]{0,20}?\b(?:instructions?|rules|prompts?|directions|guidelines)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "an instruction to the assistant",
        re.compile(
            r"\b(?:(?:you are now|act as|pretend to be|new instructions for)\s+(?:an?\s+|the\s+)?"
            r"(?:AI|assistant|chatbot|language model|model)|(?:note to the |dear )?(?:AI|assistant|chatbot|"
            r"language model)s?\s*[:,]\s*(?:you\s+)?(?:must|should|always|never|ignore|do not|don't))\b",
            re.IGNORECASE,
        ),
    ),
    ("a forged quote line of the answer format", re.compile(QUOTE_LINE.pattern, re.MULTILINE)),
    ("the answer format's end marker", re.compile(re.escape(END_OF_ANSWER))),
]


def injection_signs(text: str) -> list[str]:
    """One line per sign found: what it looks like and the passage, e.g. `an instruction to the assistant:
    "Ignore all previous instructions"`. Empty for ordinary text."""
    found: dict[str, str] = {}  # label -> the first passage that shows it
    for label, pattern in _SIGNS:
        match = pattern.search(text)
        if match and label not in found:
            found[label] = " ".join(match.group(0).split())[:80]
    return [f"{label}: {passage!r}" for label, passage in found.items()]
