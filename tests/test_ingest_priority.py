"""Ingest runs below chat: the app's re-ingest thread, the threads it starts (the embedder's workers) and the whole
`assistant ingest` process take ingest.nice; the app's other threads keep their priority; embedding waits while the
same process generates an answer."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import ui.ingest_job
from assistant.settings import Settings
from ingestion.run import run_ingest
from ingestion.summary import SyncSummary
from tests.conftest import runtime
from ui.ingest_job import IngestJobs

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="nice values per thread are Linux's")


def nice_of_this_thread() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_the_apps_re_ingest_runs_below_its_answers(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, int] = {}

    def fake_ingest(components: Any, source: Path, collection: str, **_: Any) -> SyncSummary:
        seen["job"] = nice_of_this_thread()
        worker = threading.Thread(target=lambda: seen.update(worker=nice_of_this_thread()))
        worker.start()  # as the embedder's OpenMP team is started by the thread that first encodes
        worker.join()
        return SyncSummary(collection, str(source), False)

    monkeypatch.setattr(ui.ingest_job, "run_ingest", fake_ingest)
    before = nice_of_this_thread()
    if before >= settings.ingest.nice:
        pytest.skip("the suite itself runs at nice 19: nothing to lower")
    with runtime(settings) as components:
        job = IngestJobs(components).start(tmp_path, settings.store.collection, "olivia")
        assert job.finished.wait(30) and job.error is None
    assert settings.ingest.nice == 19
    assert seen == {"job": 19, "worker": 19}
    assert nice_of_this_thread() == before  # the thread that answers questions is untouched


def test_the_ingest_command_lowers_its_whole_process() -> None:
    script = """
import os, threading
from ingestion.priority import lower_this_process
ready, done = threading.Event(), threading.Event()
seen = {}
def early():  # a thread started before, as a model's worker pool may be
    ready.set(); done.wait(); seen["early"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
thread = threading.Thread(target=early); thread.start(); ready.wait()
lower_this_process(NICE)
done.set(); thread.join()
print(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), seen["early"])
"""
    base = nice_of_this_thread()  # the child starts with ours (the suite may itself run under `nice`)
    for nice in (19, 0):
        out = subprocess.run(
            [sys.executable, "-c", script.replace("NICE", str(nice))], capture_output=True, text=True, check=True
        )
        assert out.stdout.split() == [str(max(base, nice))] * 2


def test_embedding_waits_while_the_same_process_answers(
    settings: Settings, handbook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.ingest.yield_to_answers_s = 120
    with runtime(settings) as components:
        embedded: list[int] = []
        real_embed = components.embedder.embed_documents
        monkeypatch.setattr(
            components.embedder, "embed_documents", lambda texts: embedded.append(len(texts)) or real_embed(texts)
        )
        waiting = threading.Event()
        real_wait = components.in_flight.wait_idle

        def wait_idle(timeout: float | None = None) -> bool:
            waiting.set()
            return real_wait(timeout)

        monkeypatch.setattr(components.in_flight, "wait_idle", wait_idle)
        summaries: list[SyncSummary] = []
        with components.in_flight:  # an answer is being generated
            sync = threading.Thread(target=lambda: summaries.append(run_ingest(components, handbook)))
            sync.start()
            assert waiting.wait(60)
            sync.join(1.0)
            assert sync.is_alive() and not any(embedded)  # nothing embedded while the answer runs
        sync.join(120)
        assert summaries and summaries[0].ok and sum(embedded) == summaries[0].chunks > 0
