"""Near-duplicate questions at scale: MinHash LSH (datasketch) proposes candidates, exact word-set Jaccard decides.

Comparing every pair of questions is quadratic: 100,000 examples are five billion pairs. MinHash signatures in an
LSH index propose the earlier questions that share enough of their words, in about constant time per question; each
candidate is then checked exactly against the rule (`NEAR_DUPLICATE` of `evals.held_out`), so every finding is one
the pairwise rule makes too. The index has 32 bands of 4 rows: two questions of Jaccard J become candidates with
probability 1 - (1 - J^4)^32, which is 1 - 6e-11 at the rule's 0.85 (and 0.99985 at 0.7), while pairs sharing a
word or two rarely are (0.05 at J = 0.2). `benchmarks/near_duplicates.py` compares both ways on 100,000 examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from datasketch import MinHash, MinHashLSH

from evals.held_out import NEAR_DUPLICATE, jaccard

PERMUTATIONS = 128  # MinHash signature length
BANDS, ROWS = 32, 4  # LSH bands x rows = PERMUTATIONS: see the module's docstring for what they catch
SEED = 13  # the same hash functions on every machine: the same candidates
SCHEME = "affine32"  # datasketch 2.0's default permutation scheme, named: signatures reuse its permutations


class NearDuplicates:
    """Word sets added one by one (keys in insertion order); `matches` names the earlier ones at or above the
    threshold."""

    def __init__(self, threshold: float = NEAR_DUPLICATE) -> None:
        self.threshold = threshold
        self._lsh = MinHashLSH(num_perm=PERMUTATIONS, params=(BANDS, ROWS))
        self._words: list[frozenset[str]] = []

    def __len__(self) -> int:
        return len(self._words)

    def matches(self, mine: frozenset[str]) -> list[int]:
        """Keys of the added word sets whose Jaccard with `mine` reaches the threshold, earliest first."""
        if not mine:  # an empty set has no words to hash; it matches only other empty sets (Jaccard 1.0)
            return [key for key, theirs in enumerate(self._words) if not theirs]
        found = (int(key) for key in self._lsh.query(_signature(mine)))
        return sorted(key for key in found if jaccard(mine, self._words[key]) >= self.threshold)

    def add(self, mine: frozenset[str]) -> int:
        """Add a word set; returns its key (the number of sets added before it)."""
        key = len(self._words)
        self._words.append(mine)
        if mine:
            self._lsh.insert(str(key), _signature(mine))
        return key


@lru_cache(maxsize=1)
def _permutations() -> Any:
    """The hash functions, drawn once (drawing them is most of a fresh MinHash's cost)."""
    return MinHash(num_perm=PERMUTATIONS, seed=SEED, scheme=SCHEME).permutations


def _signature(words: frozenset[str]) -> MinHash:
    signature = MinHash(num_perm=PERMUTATIONS, seed=SEED, permutations=_permutations(), scheme=SCHEME)
    signature.update_batch([word.encode("utf-8") for word in sorted(words)])
    return signature


def earlier_matches(sets: Sequence[frozenset[str]], threshold: float = NEAR_DUPLICATE) -> list[list[int]]:
    """For each word set, the earlier ones at or above the threshold, through the LSH index."""
    index = NearDuplicates(threshold)
    found = []
    for mine in sets:
        found.append(index.matches(mine))
        index.add(mine)
    return found


def earlier_matches_pairwise(sets: Sequence[frozenset[str]], threshold: float = NEAR_DUPLICATE) -> list[list[int]]:
    """The same by comparing every pair (quadratic): the reference the index is checked against."""
    return [[j for j in range(i) if jaccard(mine, sets[j]) >= threshold] for i, mine in enumerate(sets)]
