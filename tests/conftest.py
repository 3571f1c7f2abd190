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


@pytest.fixture(autouse=True)
def _share_loaded_embedder(embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Embedder built during a test reuses the session's loaded model instead of loading it again."""
    monkeypatch.setattr(Embedder, "_model", embedder._model, raising=False)


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
