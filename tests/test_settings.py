from __future__ import annotations

from pathlib import Path

import pytest

from assistant.errors import ConfigError
from assistant.settings import Settings, load_settings, profile_names
from tests.conftest import run


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


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "ASSISTANT_IDENTITY__ALLOW_DEV_USER",
            "false",
            "unknown setting ASSISTANT_IDENTITY__ALLOW_DEV_USER in the environment; did you mean "
            "ASSISTANT_IDENTITY__ALLOW_DEV_USERS?",
        ),
        ("ASSISTANT_INGEST__EXTENSIONS", ".md", "setting ASSISTANT_INGEST__EXTENSIONS cannot be parsed; list and"),
        ("ASSISTANT_RETRIEVAL__TOP_K", "9" * 30, "setting retrieval.top_k: Input should be less than or equal to"),
        ("ASSISTANT_STORE__COLLECTION", "../outside", "setting store.collection: String should match pattern"),
    ],
)
def test_bad_environment_values_are_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_a_file_as_the_data_dir_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder")
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        load_settings()


def test_a_collection_option_cannot_leave_the_data_dir(tmp_path: Path) -> None:
    from tests.conftest import run

    result = run("search", "holidays", "--groups", "everyone", "--collection", "../../[x]escape", data_dir=tmp_path)
    assert result.returncode == 1 and "collection name '../../[x]escape'" in result.stderr  # printed as written
    assert not (tmp_path.parent / "escape").exists() and not list(tmp_path.parent.glob("escape*"))


def test_dev_sign_in_is_refused_unless_served_on_loopback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`streamlit run ui/app.py` serves every interface: dev sign-in must not depend on `assistant ui`'s check."""
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    from tests.conftest import REPO

    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path))
    config.set_option("server.address", "0.0.0.0")
    try:
        at = AppTest.from_file(str(REPO / "ui" / "app.py"), default_timeout=60)
        at.run()
    finally:
        config.set_option("server.address", "localhost")
    assert not at.exception
    assert any("served on localhost only" in e.value for e in at.error)
    assert not at.sidebar.selectbox  # no user picker


def test_a_token_without_sub_or_name_is_one_clear_line() -> None:
    from assistant.errors import IdentityError
    from assistant.settings import UISettings
    from ui.roles import principal_from_claims

    with pytest.raises(IdentityError, match="neither a 'sub' nor"):
        principal_from_claims({"groups": ["hr"]}, UISettings())


def test_the_checkout_is_a_setting_not_the_working_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Run from any directory: the held-out sets and the commit come from `repo_dir`, never from `Path.cwd()`."""
    from evals.held_out import held_out_index
    from evals.run_files import git_commit

    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASSISTANT_PROFILE", "test")
    monkeypatch.setenv("ASSISTANT_REPO_DIR", str(repo))
    settings = load_settings()
    assert settings.repo_dir == repo
    sets = {where.split(":")[0] for where, _ in held_out_index(settings.repo_dir)}
    assert {"samples/handbook-golden.jsonl", "samples/out-of-corpus.jsonl"} <= sets
    assert git_commit(settings.repo_dir) == git_commit(repo) != "unknown"


def test_an_installed_package_run_from_another_directory_behaves_the_same(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, handbook_index: Settings
) -> None:
    """No setting names a file relative to the working directory: repository files come from the checkout."""
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ASSISTANT_REPO_DIR", raising=False)
    settings = load_settings()
    assert settings.repo_dir == repo
    assert settings.review.golden == repo / "samples" / "handbook-golden.jsonl" and settings.review.golden.is_file()
    assert settings.identity.users_file is not None and settings.identity.users_file.is_file()
    assert settings.review.training_items == repo / "tuning" / "data" / "handbook-items.jsonl"
    result = run("search", "Do I need a receipt for a taxi?", "--user", "dana", data_dir=handbook_index.data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "company/expense-basics.md" in result.stdout
