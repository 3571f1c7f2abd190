"""Is an answer right? Each answerable evaluation question lists the key facts a correct answer must state
(`"key_facts"` in a golden set: numbers with units, dates, names, option names, a yes/no verdict). An answer is
correct when every key fact is in its answer line or its verbatim quotes; answered and not correct is wrong.

Matching is mechanical, so that anyone re-running an evaluation gets the same verdicts: text is lowercased,
thousands separators dropped ("1,800" -> "1800"), every punctuation mark but "$", "%" and a "." or ":" between
digits becomes a space (`assistant.answer_support.words`, the normalisation the answer labels use too), and a
fact matches when its words occur in that order, adjacent. A fact may list alternative wordings separated by
" | " ("18 days | eighteen days"). The facts "yes" and "no" are verdicts: they match only the answer line's first
word.

Where the facts were on the way to the answer (`facts_located`): every fact, verdicts aside (a verdict is said by
the answer, not found in a document), in one of the given texts (the retrieved blocks, the shown blocks, the
scorer's top sentences); the facts may sit in different texts.
"""

from __future__ import annotations

from collections.abc import Sequence

from assistant.answer_support import words

VERDICTS = ("yes", "no")
ALTERNATIVE = "|"


def _contains(haystack: list[str], needle: list[str]) -> bool:
    width = len(needle)
    return bool(needle) and any(haystack[i : i + width] == needle for i in range(len(haystack) - width + 1))


def fact_found(fact: str, answer_line: str, quotes: Sequence[str] = ()) -> bool:
    """Whether one key fact (with its alternatives) is stated by the answer line or one of its quotes."""
    if fact.strip().lower() in VERDICTS:
        first = words(answer_line)[:1]
        return first == [fact.strip().lower()]
    said = [words(answer_line), *(words(q) for q in quotes)]
    alternatives = [words(a) for a in fact.split(ALTERNATIVE)]
    return any(_contains(text, alternative) for text in said for alternative in alternatives)


def facts_found(facts: Sequence[str], answer_line: str, quotes: Sequence[str] = ()) -> list[bool]:
    return [fact_found(fact, answer_line, quotes) for fact in facts]


def facts_located(facts: Sequence[str], texts: Sequence[str]) -> bool:
    """Whether every non-verdict fact occurs in one of `texts` (each fact in any one of them)."""
    located = [fact for fact in facts if fact.strip().lower() not in VERDICTS]
    return bool(texts) and all(fact_found(fact, "", texts) for fact in located)
