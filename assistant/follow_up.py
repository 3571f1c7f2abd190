"""Is a question a follow-up? Only then is it retrieved together with the question before it.

"Can I carry any of it over?" means nothing to a search on its own, so the previous question's words are added;
"How many vacation days do I get?" after "How do I reset my password?" is a question of its own, and merging the
two sends the search to the password policy (a new user's vacation question was refused that way, 2026-12-05).
A question depends on the previous one when it opens as a continuation ("and ...", "what about ...") or points
back with a pronoun or determiner ("it", "they", "that one", "the same") and says little else: at most
`OWN_WORDS` words of its own beyond question words and fillers ("How long does it take to get reimbursed?" and
"How many vacation days do I get this year?" stand alone). A cheap rule over the user's words, with no model:
when it misses, the question is retrieved alone, as a user who asks again in full would expect.
"""

from __future__ import annotations

import re

CONTINUATIONS = ("and", "but", "or", "also", "so", "then", "what about", "how about", "same for", "plus")
_BACK_REFERENCES = "it its it's itself they them their theirs those these that this such same former latter"
_FILLERS = (
    "a an the i me my we us our you your he she him her is are was were be been do does did doing done have has had "
    "can could should would will shall may might must to of in on at for from by with about into over under up down "
    "out off any some all every each more most much many how what when where which who whom why whether if then "
    "than there here not no yes please get got also just still too very really"
)
BACK_REFERENCES = frozenset(_BACK_REFERENCES.split())
FILLERS = frozenset(_FILLERS.split())
OWN_WORDS = 2  # content words a back-referencing question may have and still depend on the previous one
_WORD = re.compile(r"[a-z']+")


def depends_on_previous(question: str) -> bool:
    words = _WORD.findall(question.lower())
    if not words:
        return False
    opening = " ".join(words[:2])
    if any(opening == c or opening.startswith(c + " ") for c in CONTINUATIONS):
        return True
    if not any(word in BACK_REFERENCES for word in words):
        return False
    own = [w for w in words if w not in BACK_REFERENCES and w not in FILLERS]
    return len(own) <= OWN_WORDS


def retrieval_query(question: str, previous: str | None) -> str:
    """What is searched for: the question, after the previous one when it is a follow-up of it."""
    return f"{previous}\n{question}" if previous and depends_on_previous(question) else question
