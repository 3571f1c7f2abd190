"""Shared fixtures: the real bundled embedder (loaded once), real Qdrant Edge, a copy of the sample handbook."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["ASSISTANT_PROFILE"] = "test"

from assistant.embedder import Embedder
from assistant.settings import Settings, load_settings
from assistant.store import StoredChunk, build_store
from ingestion.run import run_ingest
from ingestion.summary import SyncSummary

REPO = Path(__file__).resolve().parents[1]
HANDBOOK = REPO / "samples" / "handbook"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    model = Embedder(load_settings().embedder)
    model.embed_documents(["warm up"])  # load once per test session
    return model


@pytest.fixture(scope="session", autouse=True)
def _share_loaded_embedder(embedder: Embedder) -> None:
    """Every Embedder built in this test session reuses the one loaded model instead of loading it again."""
    Embedder._model = embedder._model  # type: ignore[assignment,method-assign]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture
def handbook(tmp_path: Path) -> Path:
    """A private, editable copy of the sample handbook."""
    target = tmp_path / "handbook"
    shutil.copytree(HANDBOOK, target)
    return target


def ingest(
    settings: Settings,
    source: Path,
    *,
    groups: list[str] | None = None,
    dry_run: bool = False,
    collection: str = "handbook",
) -> SyncSummary:
    return run_ingest(settings, source, collection, groups, dry_run=dry_run, progress=False)


def stored_chunks(settings: Settings, collection: str = "handbook") -> list[StoredChunk]:
    """Every visible chunk in the collection (opens and closes the store: Edge allows one holder at a time)."""
    store = build_store(settings)
    try:
        return list(store.iter_chunks(collection))
    finally:
        store.close()


def docs_in_index(settings: Settings, collection: str = "handbook") -> dict[str, dict[str, object]]:
    """doc id -> {version, groups, chunks, hash} as the index holds it now."""
    docs: dict[str, dict[str, object]] = {}
    for chunk in stored_chunks(settings, collection):
        entry = docs.setdefault(chunk.doc_id, {"versions": set(), "groups": set(), "chunks": 0, "hashes": set()})
        entry["versions"].add(chunk.payload["version"])  # type: ignore[union-attr]
        entry["groups"].add(tuple(chunk.groups))  # type: ignore[union-attr]
        entry["hashes"].add(chunk.payload["doc_hash"])  # type: ignore[union-attr]
        entry["chunks"] += 1  # type: ignore[operator]
    return docs


@pytest.fixture(scope="session")
def handbook_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Settings:
    """The sample handbook ingested once per test session into Qdrant Edge; tests must only read it."""
    settings = load_settings(data_dir=tmp_path_factory.mktemp("handbook-index"))
    assert ingest(settings, HANDBOOK).ok
    return settings


@pytest.fixture(scope="session")
def handbook_index_local(tmp_path_factory: pytest.TempPathFactory, handbook_index: Settings) -> Settings:
    """The same handbook in qdrant-client's local mode: the stand-in for a Qdrant server."""
    settings = load_settings(data_dir=tmp_path_factory.mktemp("handbook-local"), store={"backend": "local"})
    assert ingest(settings, HANDBOOK).ok
    return settings
