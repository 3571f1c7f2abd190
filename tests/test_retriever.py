"""Retrieval on the sample handbook with the real embedder, BM25 and Qdrant Edge."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from assistant.access import Principal
from assistant.errors import IdentityError
from assistant.identity import dev_principal, load_dev_users
from assistant.retriever import Retriever, build_retriever
from assistant.settings import IdentitySettings, Settings
from assistant.store import build_store
from evals import gate
from evals.datasets import load_golden
from evals.retrieval import evaluate
from tests.conftest import REPO

GOLDEN = REPO / "samples" / "handbook-golden.jsonl"
USERS = REPO / "samples" / "users.yaml"
RECALL_AT_5_FLOOR = 0.90  # measured 1.000 (45/45) with the default hybrid settings; see README


@pytest.fixture(scope="module")
def retriever(handbook_index: Settings) -> Iterator[Retriever]:
    store = build_store(handbook_index)
    yield build_retriever(handbook_index, store)
    store.close()


def test_golden_set_recall_at_5(retriever: Retriever) -> None:
    run = evaluate(retriever, load_golden(GOLDEN), "hybrid")
    assert len(run.queries) == 45
    assert run.aggregate["recall@5"] >= RECALL_AT_5_FLOOR, [q.qid for q in run.queries if q.metrics["recall@5"] < 1]


def test_results_are_unique_documents_the_user_may_read(retriever: Retriever) -> None:
    alice = dev_principal(IdentitySettings(users_file=USERS), "alice")
    result = retriever.search(alice, "how do I deploy to production?", top_k=8)
    assert len(result.doc_ids) == len(set(result.doc_ids)) > 1
    assert all(set(c.groups) & alice.groups for c in result.chunks)
    assert result.chunks[0].doc_id.startswith("engineering/")
    assert result.answerable


def test_contractor_without_groups_reads_nothing_and_gets_a_refusal(retriever: Retriever) -> None:
    victor = Principal.of("victor", [])
    result = retriever.search(victor, "How many floating holidays do I get?")
    assert result.chunks == [] and not result.answerable and result.evidence.similarity == -1.0


def test_every_mode_respects_groups(retriever: Retriever) -> None:
    dana = Principal.of("dana", ["everyone"])
    for mode in ("hybrid", "dense", "bm25"):
        result = retriever.search(dana, "salary bands for engineers", top_k=10, mode=mode)  # type: ignore[arg-type]
        assert result.chunks, mode
        assert all("everyone" in c.groups for c in result.chunks), mode
        assert "hr/salary-bands.md" not in result.doc_ids


def test_question_of_stop_words_only_still_searches_dense(retriever: Retriever) -> None:
    result = retriever.search(Principal.of("dana", ["everyone"]), "what is it", top_k=3)
    assert len(result.chunks) == 3


def test_dev_users_file_is_parsed_and_refused_in_production() -> None:
    users = load_dev_users(USERS)
    assert users["victor"].groups == frozenset()
    assert users["erin"].groups == {"everyone", "executives"}
    with pytest.raises(IdentityError, match="unknown user 'mallory'"):
        dev_principal(IdentitySettings(users_file=USERS), "mallory")
    with pytest.raises(IdentityError, match="disabled"):
        dev_principal(IdentitySettings(users_file=USERS, allow_dev_users=False), "erin")


def test_recall_gate_refuses_what_no_approved_source_answers(retriever: Retriever) -> None:
    """Measured with the default gate: refusal precision 0.953, recall 0.891 on 91 questions (46 to refuse)."""
    samples = gate.collect(retriever, load_golden(GOLDEN), load_golden(REPO / "samples" / "out-of-corpus.jsonl"))
    assert sum(s.should_refuse for s in samples) == 46
    measured = gate.score(samples, retriever.gate.settings.min_evidence, retriever.gate.settings.coverage_weight)
    assert measured.refusal_precision >= 0.9
    assert measured.refusal_recall >= 0.85
