"""One runtime per process: `open_components` opens what is used, shares it, and closes it in order."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from assistant.access import Principal
from assistant.answering import REFUSAL
from assistant.errors import IndexInUseError
from assistant.generator import Generator
from assistant.settings import GeneratorSettings, Settings
from assistant.store import VectorSpace
from assistant.store.edge import EdgeStore
from ingestion.run import run_ingest
from tests.conftest import runtime


def test_a_reingest_and_answers_run_at_once_on_one_runtime(
    settings: Settings, handbook: Path, tiny_model: Path, tmp_path: Path
) -> None:
    generator = Generator(GeneratorSettings(model=str(tiny_model), device="cpu", max_new_tokens=4), tmp_path)
    with runtime(settings, generator=generator) as components:
        assert run_ingest(components, handbook).ok
        for n in range(6):
            (handbook / "company" / f"notice-{n}.md").write_text(f"# Notice {n}\n\n" + "Parking rules apply. " * 150)
        summaries, errors = [], []

        def reingest() -> None:
            try:
                summaries.append(run_ingest(components, handbook))
            except BaseException as exc:  # surfaced by the assertions below
                errors.append(exc)

        worker = threading.Thread(target=reingest)
        worker.start()
        answerer = components.answerer()
        dana, victor = Principal.of("dana", ["everyone"]), Principal.of("victor", [])
        answers = 0
        while worker.is_alive() or answers == 0:
            answer = answerer.ask(dana, "How many floating holidays do I get each year?")
            assert not answer.refused and all("everyone" in c.groups for c in answer.retrieved)
            assert answerer.ask(victor, "How many floating holidays do I get each year?").answer == REFUSAL
            answers += 1
        worker.join()
        assert errors == [] and answers >= 1
        assert sorted(summaries[0].added) == [f"company/notice-{n}.md" for n in range(6)]
        assert components.retriever() is answerer.retriever  # one retriever (and embedder) per collection


def test_the_index_is_released_on_exit_even_after_an_error(settings: Settings, handbook: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), runtime(settings) as components:
        assert run_ingest(components, handbook).ok
        raise RuntimeError("boom")
    holder = EdgeStore(settings.index_dir)  # would fail with IndexInUseError if the lock were still held
    holder.close()


def test_nothing_heavy_opens_until_it_is_used(settings: Settings) -> None:
    holder = EdgeStore(settings.index_dir)  # another process's app owns the index
    holder.ensure_collection("handbook", VectorSpace("test", 384))
    try:
        with runtime(settings) as components:
            assert not components.tracer.enabled  # tracing only: fine while the index is held elsewhere
            with pytest.raises(IndexInUseError):
                components.store.count("handbook")
    finally:
        holder.close()
