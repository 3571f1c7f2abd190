"""The app's situation: one process owns the embedded index, serves queries and runs a re-ingest meanwhile."""

from __future__ import annotations

import threading
from pathlib import Path

from assistant.access import Principal
from assistant.settings import Settings
from assistant.store import SearchQuery
from ingestion.sources import open_source
from ingestion.state import SyncState
from ingestion.sync import Ingestor
from tests.conftest import runtime


def test_queries_are_answered_during_a_reingest_in_the_same_process(settings: Settings, handbook: Path) -> None:
    with runtime(settings) as components:
        store, embedder = components.store, components.embedder
        state = SyncState(settings.state_path)
        ingestor = Ingestor(components, state)

        def source() -> object:
            return open_source(handbook, None, settings.ingest.extensions, settings.ingest.max_file_bytes)

        try:
            ingestor.sync(source(), "handbook")  # type: ignore[arg-type]
            for n in range(4):
                notice = f"# Notice {n}\n\n" + "Parking rules apply. " * 200
                (handbook / "company" / f"notice-{n}.md").write_text(notice)
            errors: list[BaseException] = []

            def reingest() -> None:
                try:
                    ingestor.sync(source(), "handbook")  # type: ignore[arg-type]
                except BaseException as exc:  # surfaced by the assertion below
                    errors.append(exc)

            worker = threading.Thread(target=reingest)
            worker.start()
            dana = Principal.of("dana", ["everyone"])
            question = "How many public holidays do we get?"
            dense, sparse = embedder.embed_query(question).tolist(), components.bm25.embed_query(question)
            answered = 0
            while worker.is_alive() or answered == 0:
                hits = store.search("handbook", dana, SearchQuery(dense, sparse, limit=5))
                assert hits and all("everyone" in h.groups for h in hits)
                answered += 1
            worker.join()
            assert errors == []
            assert answered > 1
            added = store.chunk_ids("handbook", [f"company/notice-{n}.md" for n in range(4)])
            assert all(added.values())  # the re-ingest finished while queries were being answered
        finally:
            state.close()
