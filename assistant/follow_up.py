"""Is a question a follow-up? Only then is it retrieved together with the question before it.

"Can I carry any of it over?" means nothing to a search on its own, so the previous question's words are added;
"How many vacation days do I get?" after "How do I reset my password?" is a question of its own, and merging the
two sends the search to the password policy (a new user's vacation question was refused that way, 2026-12-05).
A question depends on the previous one when it opens as a continuation ("and ...", "what about ...") or points
back with a pronoun or determiner ("it", "they", "that one", "the same"). A cheap rule over the user's words,
with no model: when it misses, the question is retrieved alone, as a user who asks again in full would expect.
"""

from __future__ import annotations

import re

CONTINUATIONS = ("and", "but", "or", "also", "so", "then", "what about", "how about", "same for", "plus")
BACK_REFERENCES = frozenset(
    "it its it's itself they them their theirs those these that this such same former latter one ones".split()  # noqa: SIM905
)
_WORD = re.compile(r"[a-z']+")


def depends_on_previous(question: str) -> bool:
    words = _WORD.findall(question.lower())
    if not words:
        return False
    opening = " ".join(words[:2])
    if any(opening == c or opening.startswith(c + " ") for c in CONTINUATIONS):
        return True
    return any(word in BACK_REFERENCES for word in words)


def retrieval_query(question: str, previous: str | None) -> str:
    """What is searched for: the question, after the previous one when it is a follow-up of it."""
    return f"{previous}\n{question}" if previous and depends_on_previous(question) else question
