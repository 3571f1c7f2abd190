"""Text of unknown origin checked against the index: an example may not carry 8 words in a row of a chunk that the
recipe's allowed groups may not read, whatever sources it names.

A line marked `"curated": true`, or one naming a public document, can still hold a sentence pasted from a
restricted one; its declared sources cannot show that, its words can. Every 8-word run (lower-cased word tokens)
of every restricted chunk is hashed into one sorted numpy array, less the runs that text the allowed groups may
read also holds (public boilerplate is public, wherever else it appears); an example's runs are looked up in it
by binary search. The check is exact for runs of 8 words: no false match beyond a 64-bit hash collision, and a
paraphrase or a run of 7 passes (the limit, said in docs/security.md). MinHash (datasketch) estimates how similar
two texts are overall, which is not the question here: one shared sentence is enough.

Cost (`python -m benchmarks.restricted_text`): see docs/benchmarks.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

RUN = 8  # words in a row that count as copied text
_WORD = re.compile(r"\w+(?:[.,]\w+)*")  # "118,000" and "v2.1" are one word each


@dataclass(frozen=True)
class IndexedText:
    """One chunk as the check needs it."""

    doc_id: str
    text: str
    groups: tuple[str, ...]


def runs(text: str) -> np.ndarray:
    """The hashes of every RUN-word run of `text` (lower-cased word tokens), as int64."""
    words = _WORD.findall(text.lower())
    return np.fromiter((hash(tuple(words[i : i + RUN])) for i in range(len(words) - RUN + 1)), dtype=np.int64)


class RestrictedRuns:
    """The 8-word runs of one collection's text that `allowed` groups may not read, with the document of each."""

    def __init__(self, hashes: np.ndarray, owners: np.ndarray, doc_ids: list[str]) -> None:
        self._hashes = hashes  # sorted
        self._owners = owners  # index into doc_ids, aligned with hashes
        self._doc_ids = doc_ids

    @classmethod
    def of(cls, chunks: Iterable[IndexedText], allowed: frozenset[str]) -> RestrictedRuns:
        restricted: list[np.ndarray] = []
        owners: list[np.ndarray] = []
        readable: list[np.ndarray] = []
        doc_ids: dict[str, int] = {}
        for chunk in chunks:
            found = runs(chunk.text)
            # The groups rule of the training data: every group of the document inside the allowed ones.
            if chunk.groups and set(chunk.groups) <= allowed:
                readable.append(found)
            else:
                restricted.append(found)
                owners.append(np.full(len(found), doc_ids.setdefault(chunk.doc_id, len(doc_ids)), dtype=np.int32))
        hashes = np.concatenate(restricted) if restricted else np.empty(0, np.int64)
        owner = np.concatenate(owners) if owners else np.empty(0, np.int32)
        if readable and len(hashes):
            keep = ~np.isin(hashes, np.concatenate(readable))
            hashes, owner = hashes[keep], owner[keep]
        order = np.argsort(hashes, kind="stable")
        return cls(hashes[order], owner[order], list(doc_ids))

    def __len__(self) -> int:
        return len(self._hashes)

    def first_source(self, text: str) -> str | None:
        """The id of a restricted document sharing a run of RUN words with `text`, or None."""
        found = runs(text)
        if not len(found) or not len(self._hashes):
            return None
        # Binary search in the sorted runs: O(m log n) per text (np.isin would sort all n runs on every call).
        at = np.minimum(np.searchsorted(self._hashes, found), len(self._hashes) - 1)
        shared = np.flatnonzero(self._hashes[at] == found)
        if not len(shared):
            return None
        return self._doc_ids[int(self._owners[at[shared[0]]])]


class RestrictedText:
    """Restricted runs per collection, built on first use from the collections' chunks (a collection not given has
    none)."""

    def __init__(self, chunks: Mapping[str, Sequence[IndexedText]], allowed: frozenset[str]) -> None:
        self._chunks = chunks
        self._allowed = allowed
        self._collections: dict[str, RestrictedRuns] = {}

    def of(self, collection: str) -> RestrictedRuns:
        if collection not in self._collections:
            self._collections[collection] = RestrictedRuns.of(self._chunks.get(collection, ()), self._allowed)
        return self._collections[collection]

    def first_source(self, text: str, collections: Iterable[str]) -> str | None:
        """`collection:doc_id` of a restricted document sharing RUN words in a row with `text`, or None."""
        for collection in collections:
            doc_id = self.of(collection).first_source(text)
            if doc_id is not None:
                return f"{collection}:{doc_id}"
        return None
