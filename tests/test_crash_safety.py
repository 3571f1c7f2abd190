"""kill -9 a real `assistant ingest` at several points of a re-ingest.

After each kill the index must hold, for every document, exactly its old version or exactly its new one (or be
absent where that version is absent), and a plain re-run must finish the sync to the same index as an
uninterrupted one. Kills are injected with ASSISTANT_CRASH_AT, which SIGKILLs the process at a named step.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.settings import Settings, load_settings
from tests.conftest import ingest, stored_chunks

Snapshot = dict[str, frozenset[tuple[object, ...]]]
WINDOW = 4  # chunks per atomic write: small, so a kill can land between several writes


def snapshot(settings: Settings) -> Snapshot:
    docs: dict[str, set[tuple[object, ...]]] = {}
    for c in stored_chunks(settings):
        p = c.payload
        docs.setdefault(c.doc_id, set()).add((p["chunk_index"], p["chunk_hash"], tuple(c.groups), p["version"]))
    return {doc: frozenset(chunks) for doc, chunks in docs.items()}


def make_v2(handbook: Path) -> None:
    """Every kind of change at once: shrink, grow, add, delete, re-group, withdraw."""
    (handbook / "company" / "holidays.md").write_text("# Holidays\n\nEvery Friday is off.\n", encoding="utf-8")
    grown = handbook / "company" / "remote-work-policy.md"
    grown.write_text(grown.read_text() + "\n\n## Appendix\n\n" + "Home office stipend details apply. " * 120)
    for n in range(3):
        text = f"# Canteen {n}\n\n" + f"The canteen on floor {n} opens at eight and serves soup. " * 60
        (handbook / "company" / f"canteen-{n}.md").write_text(text, encoding="utf-8")
    (handbook / "hr" / "recruiting-pipeline.md").unlink()
    policy = handbook / "access.yaml"
    text = policy.read_text()
    text = text.replace("groups: [security]", "groups: [security, engineering]")
    text = text.replace('  - match: "executives/**"\n    groups: [executives]\n', "")
    policy.write_text(text)


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory, embedder: object) -> dict[str, object]:
    """Index of v1, index after an uninterrupted v1 -> v2 sync, and the v2 corpus."""
    root = tmp_path_factory.mktemp("crash")
    corpus = root / "handbook"
    shutil.copytree(Path(__file__).resolve().parents[1] / "samples" / "handbook", corpus)
    v1 = load_settings(data_dir=root / "v1", ingest={"window_chunks": WINDOW})
    ingest(v1, corpus)
    make_v2(corpus)
    v2 = load_settings(data_dir=root / "v2", ingest={"window_chunks": WINDOW})
    shutil.copytree(v1.data_dir, v2.data_dir)
    summary = ingest(v2, corpus)
    assert summary.chunks > 4 * WINDOW  # several atomic writes, so kills land between them
    return {"corpus": corpus, "v1": v1, "old": snapshot(v1), "new": snapshot(v2)}


def run_killed_ingest(data_dir: Path, corpus: Path, crash_at: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ASSISTANT_PROFILE": "test",
        "ASSISTANT_DATA_DIR": str(data_dir),
        "ASSISTANT_CRASH_AT": crash_at,
        "ASSISTANT_INGEST__WINDOW_CHUNKS": str(WINDOW),
        "HF_HUB_OFFLINE": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "assistant.cli", "ingest", str(corpus), "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    "crash_at",
    [
        "after_delete:1",
        "after_regroup:1",
        "after_embed:2",
        "after_store_write:1",
        "after_store_write:3",
        "after_state_commit:2",
    ],
)
def test_kill_leaves_old_or_new_version_and_rerun_finishes(
    versions: dict[str, object], tmp_path: Path, crash_at: str
) -> None:
    v1: Settings = versions["v1"]  # type: ignore[assignment]
    old: Snapshot = versions["old"]  # type: ignore[assignment]
    new: Snapshot = versions["new"]  # type: ignore[assignment]
    corpus: Path = versions["corpus"]  # type: ignore[assignment]
    settings = load_settings(data_dir=tmp_path / "data", ingest={"window_chunks": WINDOW})
    shutil.copytree(v1.data_dir, settings.data_dir)

    killed = run_killed_ingest(settings.data_dir, corpus, crash_at)
    assert killed.returncode == -9, killed.stderr[-2000:]

    after_kill = snapshot(settings)
    for doc in set(old) | set(new) | set(after_kill):
        assert after_kill.get(doc) in (old.get(doc), new.get(doc)), f"{doc} is a mix of versions after {crash_at}"
    assert after_kill != new or crash_at.startswith("after_state_commit")  # the kill really interrupted the sync

    rerun = ingest(settings, corpus)
    assert rerun.ok
    assert snapshot(settings) == new


def test_a_document_written_before_a_kill_and_then_deleted_does_not_linger(tmp_path: Path) -> None:
    corpus = tmp_path / "handbook"
    shutil.copytree(Path(__file__).resolve().parents[1] / "samples" / "handbook", corpus)
    settings = load_settings(data_dir=tmp_path / "data", ingest={"window_chunks": WINDOW})
    ingest(settings, corpus)
    make_v2(corpus)
    killed = run_killed_ingest(settings.data_dir, corpus, "after_store_write:3")
    assert killed.returncode == -9, killed.stderr[-2000:]
    written = {doc for doc in snapshot(settings) if doc.startswith("company/canteen-")}
    assert written  # some new documents reached the store before the kill
    for doc in written:
        (corpus / doc).unlink()
    assert ingest(settings, corpus).ok
    assert not any(doc.startswith("company/canteen-") for doc in snapshot(settings))
