"""Access-leak suite: whoever asks, whatever they ask, no chunk outside their groups comes back.

Property-based over random principals and questions on both backends (Qdrant Edge, and qdrant-client's local mode
standing in for a server), plus hand-written cases that name a restricted document's title exactly.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.access import Principal
from assistant.components import Components
from assistant.retriever import Retriever
from assistant.settings import RetrievalMode, Settings
from evals.datasets import load_golden
from tests.conftest import REPO, runtime

GROUPS = ["everyone", "engineering", "security", "hr", "hr-compensation", "finance", "legal", "executives"]
NOT_GROUPS = ["Everyone", "HR", "hr_", "admin", "*", "executives,hr"]  # near misses must not match anything
QUESTIONS = [q.text for q in load_golden(REPO / "samples" / "handbook-golden.jsonl").queries]


@pytest.fixture(scope="module", params=["edge", "server-stand-in"])
def components(request: pytest.FixtureRequest) -> Iterator[Components]:
    index: Settings = request.getfixturevalue("handbook_index" if request.param == "edge" else "handbook_index_local")
    with runtime(index) as opened:
        yield opened


@pytest.fixture(scope="module")
def retriever(components: Components) -> Retriever:
    return components.retriever()


@pytest.fixture(scope="module")
def doc_groups(retriever: Retriever) -> dict[str, set[str]]:
    return {c.doc_id: set(c.groups) for c in retriever.store.iter_chunks(retriever.collection)}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    groups=st.lists(st.sampled_from(GROUPS + NOT_GROUPS), max_size=4),
    question=st.one_of(st.sampled_from(QUESTIONS), st.text(min_size=1, max_size=60)),
    mode=st.sampled_from(list(RetrievalMode)),
    top_k=st.integers(min_value=1, max_value=30),
)
def test_no_chunk_outside_the_principals_groups(
    components: Components,
    retriever: Retriever,
    doc_groups: dict[str, set[str]],
    groups: list[str],
    question: str,
    mode: RetrievalMode,
    top_k: int,
) -> None:
    principal = Principal.of("random", groups)
    result = retriever.search(principal, question, top_k=top_k, mode=mode)
    for chunk in result.chunks:
        assert set(chunk.groups) & principal.groups, (chunk.doc_id, chunk.groups, principal.groups)
        assert doc_groups[chunk.doc_id] & principal.groups  # the stored document agrees
    if not principal.groups & set(GROUPS):
        assert result.chunks == [] and not components.recall_gate.check(result).answerable


RESTRICTED_TITLES = {
    "hr/salary-bands.md": "Salary Bands 2026 (US)",
    "executives/ma-target-shortlist.md": "M&A Target Shortlist — Project Lantern",
    "finance/q3-2026-budget.md": "Q3 2026 Quarterly Budget",
    "legal/contract-review-process.md": "Contract Review Process (Legal Internal)",
    "drafts/unreviewed-reorg-memo.md": "DRAFT — Proposed Reorganization of Customer Operations (not reviewed)",
}


@pytest.mark.parametrize("doc_id", sorted(RESTRICTED_TITLES))
@pytest.mark.parametrize("user_groups", [["everyone"], ["everyone", "engineering"], ["everyone", "finance"]])
def test_asking_for_a_restricted_document_by_title_finds_nothing_of_it(
    retriever: Retriever, doc_id: str, user_groups: list[str]
) -> None:
    principal = Principal.of("curious", user_groups)
    for mode in ("hybrid", "dense", "bm25"):
        result = retriever.search(principal, RESTRICTED_TITLES[doc_id], top_k=30, mode=mode)  # type: ignore[arg-type]
        assert doc_id not in result.doc_ids


def test_the_uncovered_draft_is_invisible_even_to_executives(retriever: Retriever) -> None:
    everyone_at_once = Principal.of("all-groups", GROUPS)
    result = retriever.search(everyone_at_once, "proposed reorganization of customer operations", top_k=50)
    assert "drafts/unreviewed-reorg-memo.md" not in result.doc_ids


def test_the_leak_probe_finds_nothing_here_and_would_find_a_bypass(retriever: Retriever) -> None:
    from typing import cast

    from evals.leaks import probe_leaks

    users = {"dana": Principal.of("dana", ["everyone"]), "victor": Principal.of("victor", [])}
    questions = QUESTIONS[:3]
    clean = probe_leaks(retriever, users, questions)
    assert clean.leaks == [] and clean.probes > 2 * len(questions) * 2  # titles of every document asked too

    class IgnoresGroups:  # a broken retriever: searches as someone in every group, whoever asks
        store, collection = retriever.store, retriever.collection

        def search(self, principal: Principal, query: str, **options: object) -> object:
            return retriever.search(Principal.of("root", GROUPS), query, **options)  # type: ignore[arg-type]

    broken = probe_leaks(cast(Retriever, IgnoresGroups()), users, questions)
    assert broken.leaks and {leak.user for leak in broken.leaks} == {"dana", "victor"}
    assert all(not set(leak.doc_groups) & users[leak.user].groups for leak in broken.leaks)
