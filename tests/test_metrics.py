"""Ranking metrics against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from evals.metrics import mean_scores, mrr_at_k, ndcg_at_k, recall_at_k, score_query


def test_ndcg_binary_gains() -> None:
    # relevant at ranks 1 and 3 out of two relevant documents
    expected = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(["a", "x", "b"], {"a": 1, "b": 1}, 10) == pytest.approx(expected)


def test_ndcg_graded_gains_and_cutoff() -> None:
    relevant = {"a": 2, "b": 1}
    assert ndcg_at_k(["a", "b"], relevant, 10) == pytest.approx(1.0)
    swapped = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert ndcg_at_k(["b", "a"], relevant, 10) == pytest.approx(swapped)
    assert ndcg_at_k(["x", "a"], relevant, 1) == 0.0


def test_recall_and_mrr() -> None:
    relevant = {"a": 1, "b": 1, "c": 1, "z": 0}
    assert recall_at_k(["a", "x", "b", "z"], relevant, 2) == pytest.approx(1 / 3)
    assert recall_at_k(["a", "x", "b"], relevant, 10) == pytest.approx(2 / 3)
    assert mrr_at_k(["z", "x", "b"], relevant, 10) == pytest.approx(1 / 3)  # grade 0 is not relevant
    assert mrr_at_k(["x", "y"], relevant, 10) == 0.0


def test_no_relevant_documents_scores_zero() -> None:
    assert score_query(["a"], {}) == {name: 0.0 for name in score_query(["a"], {})}


def test_mean_scores() -> None:
    first = score_query(["a"], {"a": 1})
    second = score_query(["x"], {"a": 1})
    assert mean_scores([first, second])["ndcg@10"] == pytest.approx(0.5)
    assert mean_scores([first, second])["recall@100"] == pytest.approx(0.5)
