"""Ranking metrics over document ids, as BEIR / pytrec_eval define them (graded gains, log2 discount).

`ranking` is the ordered list of retrieved document ids (already de-duplicated per document); `relevant` maps
document id -> relevance grade (> 0 is relevant). Not covered: judged-only variants and cut-offs past the ranking.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence


def ndcg_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    gains = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    if ideal == 0:
        return 0.0
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranking[:k]))
    return dcg / ideal


def recall_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    wanted = {doc for doc, grade in relevant.items() if grade > 0}
    if not wanted:
        return 0.0
    return len(wanted & set(ranking[:k])) / len(wanted)


def mrr_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    for i, doc in enumerate(ranking[:k]):
        if relevant.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


CUTOFFS: dict[str, tuple[Callable[[Sequence[str], Mapping[str, int], int], float], int]] = {
    "ndcg@10": (ndcg_at_k, 10),
    "recall@5": (recall_at_k, 5),
    "recall@10": (recall_at_k, 10),
    "recall@100": (recall_at_k, 100),
    "mrr@10": (mrr_at_k, 10),
}


def score_query(ranking: Sequence[str], relevant: Mapping[str, int]) -> dict[str, float]:
    return {name: fn(ranking, relevant, k) for name, (fn, k) in CUTOFFS.items()}


def mean_scores(per_query: Sequence[Mapping[str, float]]) -> dict[str, float]:
    if not per_query:
        return {name: 0.0 for name in CUTOFFS}
    return {name: sum(q[name] for q in per_query) / len(per_query) for name in CUTOFFS}
