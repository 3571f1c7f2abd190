from __future__ import annotations

from pathlib import Path

import pytest

from assistant.errors import ConfigError
from assistant.settings import load_settings, profile_names


def test_profiles_are_packaged() -> None:
    assert {"default", "server", "test"} <= set(profile_names())


def test_default_profile_is_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_PROFILE", "default")
    monkeypatch.delenv("ASSISTANT_DATA_DIR", raising=False)
    settings = load_settings()
    assert settings.store.backend == "edge"
    assert settings.data_dir == Path("assistant-data")


def test_server_profile_reads_qdrant_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_PROFILE", "server")
    monkeypatch.setenv("QDRANT_URL", "http://qdrant.internal:6333")
    settings = load_settings()
    assert settings.store.backend == "server"
    assert settings.store.url == "http://qdrant.internal:6333"
    assert settings.store.api_key is None  # ${QDRANT_API_KEY:} with nothing set means "no key"


def test_environment_overrides_profile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ASSISTANT_PROFILE", "test")
    monkeypatch.setenv("ASSISTANT_INGEST__WINDOW_CHUNKS", "7")
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.ingest.window_chunks == 7
    assert settings.ingest.max_file_bytes == 262144  # from the test profile
    assert settings.chunking.chunk_size == 224  # from the field default
    assert settings.data_dir == tmp_path


def test_user_config_file_merges_deeply(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    extra = tmp_path / "mine.yaml"
    extra.write_text("chunking:\n  chunk_overlap: 16\n", encoding="utf-8")
    monkeypatch.setenv("ASSISTANT_CONFIG", str(extra))
    settings = load_settings()
    assert settings.chunking.chunk_overlap == 16
    assert settings.chunking.chunk_size == 224


def test_unknown_profile_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_PROFILE", "prod")
    with pytest.raises(ConfigError, match=r"unknown profile 'prod'.*known: default"):
        load_settings()


def test_invalid_value_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_CHUNKING__CHUNK_OVERLAP", "500")
    with pytest.raises(ConfigError, match="chunk_overlap must be smaller"):
        load_settings()


def test_server_backend_without_url_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"store\.url"):
        load_settings(store={"backend": "server"})


def test_null_in_the_environment_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_GENERATOR__SHORTLIST_HEAD", "null")
    assert load_settings().generator.shortlist_head is None
