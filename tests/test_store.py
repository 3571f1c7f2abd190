"""The same store contract on both backends: Qdrant Edge and the qdrant-client stand-in for a server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from assistant.access import Principal
from assistant.errors import CollectionMismatchError, StoreError
from assistant.sparse import SparseVector
from assistant.store import ChunkRecord, SearchQuery, VectorSpace, VectorStore, chunk_point_id
from assistant.store.edge import EdgeStore
from assistant.store.server import QdrantServerStore
from assistant.store.shared import SharedEdgeStore

DIM = 8
C = "docs"


@pytest.fixture(params=["edge", "edge-through-its-holder", "server-stand-in"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    backend: VectorStore
    holder: SharedEdgeStore | None = None
    if request.param == "edge":
        backend = EdgeStore(tmp_path / "index")
    elif request.param == "edge-through-its-holder":  # every call crosses the holder's socket (peer.py)
        holder = SharedEdgeStore(tmp_path / "index")
        holder.ensure_collection(C, VectorSpace("test", DIM))
        backend = SharedEdgeStore(tmp_path / "index")
    else:
        backend = QdrantServerStore(QdrantClient(location=":memory:"))
    backend.ensure_collection(C, VectorSpace("test", DIM))
    if holder is not None:
        assert isinstance(backend, SharedEdgeStore) and backend.holder(C).startswith("pid ")
    yield backend
    backend.close()
    if holder is not None:
        holder.close()


def vec(seed: int) -> list[float]:
    v = np.random.default_rng(seed).standard_normal(DIM)
    return list(v / np.linalg.norm(v))


def chunk(doc_id: str, index: int, groups: tuple[str, ...], version: int = 1, seed: int = 0) -> ChunkRecord:
    return ChunkRecord(
        doc_id=doc_id,
        chunk_index=index,
        text=f"{doc_id} v{version} #{index}",
        title=doc_id,
        path=doc_id,
        section=None,
        groups=groups,
        doc_hash=f"h{version}",
        chunk_hash=f"{index}",
        version=version,
        dense=vec(seed or hash((doc_id, index)) % 1000),
        sparse=SparseVector([index + 1, 99], [1.0, 0.5]),
    )


def everyone(store: VectorStore) -> list[str]:
    return sorted(c.payload["text"] for c in store.iter_chunks(C))


def test_search_returns_only_chunks_of_the_callers_groups(store: VectorStore) -> None:
    store.write_chunks(
        C, [chunk("pub", 0, ("everyone",)), chunk("hr", 0, ("hr",)), chunk("mix", 0, ("hr", "legal"))], {}
    )
    hits = store.search(
        C, Principal.of("u", ["legal"]), SearchQuery(vec(1), SparseVector([1, 99], [1.0, 1.0]), limit=10)
    )
    assert [h.doc_id for h in hits] == ["mix"]
    hits = store.search(C, Principal.of("u", ["everyone", "hr"]), SearchQuery(vec(1), None, limit=10))
    assert {h.doc_id for h in hits} == {"pub", "hr", "mix"}


def test_principal_without_groups_reads_nothing(store: VectorStore) -> None:
    store.write_chunks(C, [chunk("pub", 0, ("everyone",))], {})
    assert store.search(C, Principal.of("contractor", []), SearchQuery(vec(1), None, limit=10)) == []


def test_chunk_without_groups_is_refused(store: VectorStore) -> None:
    with pytest.raises(ValueError, match="no groups"):
        store.write_chunks(C, [chunk("x", 0, ())], {})


def test_replacing_a_version_tombstones_unused_ids_in_the_same_write(store: VectorStore) -> None:
    store.write_chunks(C, [chunk("d", i, ("everyone",)) for i in range(3)], {})
    stale = {chunk_point_id("d", 1): "d", chunk_point_id("d", 2): "d"}
    store.write_chunks(C, [chunk("d", 0, ("everyone",), version=2)], stale)
    assert everyone(store) == ["d v2 #0"]
    assert store.count(C) == 1
    assert store.chunk_ids(C, ["d"]) == {"d": {chunk_point_id("d", 0)}}
    hits = store.search(
        C, Principal.of("u", ["everyone"]), SearchQuery(vec(5), SparseVector([2, 3], [1.0, 1.0]), limit=10)
    )
    assert [h.payload["text"] for h in hits] == ["d v2 #0"]  # tombstones never match a principal
    store.purge_tombstones(C)
    assert store.count(C) == 1


def test_regroup_changes_payload_only(store: VectorStore) -> None:
    store.write_chunks(C, [chunk("d", 0, ("hr",)), chunk("d", 1, ("hr",)), chunk("e", 0, ("hr",))], {})
    store.set_groups(C, "d", ["everyone"])
    groups = {c.id: c.groups for c in store.iter_chunks(C)}
    assert groups[chunk_point_id("d", 0)] == ("everyone",)
    assert groups[chunk_point_id("d", 1)] == ("everyone",)
    assert groups[chunk_point_id("e", 0)] == ("hr",)
    with pytest.raises(ValueError):
        store.set_groups(C, "d", [])


def test_delete_documents_removes_their_chunks_and_tombstones(store: VectorStore) -> None:
    store.write_chunks(C, [chunk("d", 0, ("a",)), chunk("d", 1, ("a",)), chunk("keep", 0, ("a",))], {})
    store.write_chunks(C, [chunk("d", 0, ("a",), version=2)], {chunk_point_id("d", 1): "d"})
    store.delete_documents(C, ["d"])
    assert everyone(store) == ["keep v1 #0"]
    assert store.chunk_ids(C, ["d", "keep"]) == {"d": set(), "keep": {chunk_point_id("keep", 0)}}


def test_a_collection_keeps_the_embedder_that_built_it(store: VectorStore) -> None:
    assert store.vector_space(C) == VectorSpace("test", DIM)
    store.ensure_collection(C, VectorSpace("test", DIM))  # the same embedder: fine
    for other in (VectorSpace("other-model", DIM), VectorSpace("test", DIM * 2)):
        with pytest.raises(CollectionMismatchError, match=f"was built with test \\({DIM}-dim"):
            store.ensure_collection(C, other)
    assert store.vector_space("never-made") is None


def test_a_collection_from_before_recording_adopts_a_fitting_embedder(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "index")
    store.ensure_collection(C, VectorSpace("old", DIM))
    (tmp_path / "index" / f"{C}.space.json").unlink()  # as built by a version that did not record it
    with pytest.raises(CollectionMismatchError, match=f"\\({DIM}-dim vectors\\)"):
        store.ensure_collection(C, VectorSpace("wide", DIM * 2))
    store.ensure_collection(C, VectorSpace("minilm", DIM))
    assert store.vector_space(C) == VectorSpace("minilm", DIM)
    store.close()


def test_the_edge_space_file_follows_its_shard(tmp_path: Path) -> None:
    import shutil

    store = EdgeStore(tmp_path / "index")
    store.ensure_collection(C, VectorSpace("old", DIM))
    store.close()
    shutil.rmtree(tmp_path / "index" / C)  # the shard is dropped to rebuild it with another embedder
    store = EdgeStore(tmp_path / "index")
    store.ensure_collection(C, VectorSpace("new", DIM * 2))
    assert store.vector_space(C) == VectorSpace("new", DIM * 2)
    store.close()
    (tmp_path / "index" / f"{C}.space.json").write_text("{")
    with pytest.raises(StoreError, match=r"space\.json is unreadable"):
        EdgeStore(tmp_path / "index").vector_space(C)


def test_doc_ids_lists_documents_with_visible_chunks(store: VectorStore) -> None:
    store.write_chunks(C, [chunk("a", 0, ("eng",)), chunk("a", 1, ("eng",)), chunk("b", 0, ("hr",))], {})
    store.write_chunks(C, [chunk("b", 0, ("hr",), version=2)], {chunk_point_id("a", 1): "a"})  # a#1 tombstoned
    assert store.doc_ids(C) == {"a", "b"}
    store.delete_documents(C, ["a"])
    assert store.doc_ids(C) == {"b"}


def test_has_collection(store: VectorStore) -> None:
    assert store.has_collection(C)
    assert not store.has_collection("other")


def test_dense_only_sparse_only_and_weighted_fusion(store: VectorStore) -> None:
    store.write_chunks(C, [chunk("a", 0, ("x",), seed=1), chunk("b", 1, ("x",), seed=2)], {})
    reader = Principal.of("u", ["x"])
    assert store.search(C, reader, SearchQuery(vec(1), None, limit=1))[0].doc_id == "a"
    # chunk b has sparse term 2 (index + 1); only b matches it
    assert [h.doc_id for h in store.search(C, reader, SearchQuery(None, SparseVector([2], [1.0]), limit=5))] == ["b"]
    dense_heavy = SearchQuery(vec(1), SparseVector([2], [1.0]), limit=2, rrf_k=1, dense_weight=5.0, sparse_weight=0.1)
    sparse_heavy = SearchQuery(vec(1), SparseVector([2], [1.0]), limit=2, rrf_k=1, dense_weight=0.1, sparse_weight=5.0)
    assert store.search(C, reader, dense_heavy)[0].doc_id == "a"
    assert store.search(C, reader, sparse_heavy)[0].doc_id == "b"
    with pytest.raises(ValueError, match="needs a dense vector"):
        SearchQuery(None, SparseVector([], []), limit=1)


def test_readable_doc_ids_answers_for_the_principal_after_a_regroup(store: VectorStore) -> None:
    store.write_chunks(C, [chunk("d", 0, ("everyone",)), chunk("d", 1, ("everyone",)), chunk("e", 0, ("hr",))], {})
    dana = Principal.of("dana", ["everyone"])
    assert store.readable_doc_ids(C, dana, ["d", "e", "gone"]) == {"d"}
    store.set_groups(C, "d", ["legal"])  # regrouped away from her
    assert store.readable_doc_ids(C, dana, ["d", "e"]) == set()
    assert store.readable_doc_ids(C, Principal.of("lee", ["legal", "hr"]), ["d", "e"]) == {"d", "e"}
    assert store.readable_doc_ids(C, Principal.of("victor", []), ["d", "e"]) == set()
    assert store.readable_doc_ids(C, dana, []) == set()
