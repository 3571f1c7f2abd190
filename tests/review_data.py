"""Data directories for the review-redaction tests: the sync state's record of who may read a few handbook
documents (written directly: nothing is embedded), questions in the log, and a saved retrieval run. Carlos
(hr-compensation) asks about a salary band; Dana (everyone) asks about holidays."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from assistant.question_log import LoggedQuestion
from assistant.settings import Settings
from evals.run_files import save_run
from ingestion.state import DocumentState, SyncState

SALARY_DOC = "hr/salary-bands.md"
SALARY_TITLE = "Salary Bands 2026 (US)"
SALARY_QUESTION = "What is the top of the E4 band in Rotterdam?"
HOLIDAY_DOC = "company/holidays.md"
HOLIDAY_QUESTION = "Do we get the day after Thanksgiving off?"
DOCUMENTS = {  # doc id -> (groups, title), as samples/handbook/access.yaml gives them
    SALARY_DOC: (("hr-compensation", "executives"), SALARY_TITLE),
    HOLIDAY_DOC: (("everyone",), "Company Holidays 2026"),
    "hr/parental-leave.md": (("hr",), "Parental Leave"),
}


def record_documents(settings: Settings, collection: str = "handbook") -> None:
    state = SyncState(settings.state_path)
    try:
        state.save(
            collection,
            [DocumentState(doc, doc, "hash", groups, None, 1, 1, title) for doc, (groups, title) in DOCUMENTS.items()],
        )
    finally:
        state.close()


def hit(doc_id: str, rank: int = 1, groups: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A retrieved document as the log records it (its groups at the time: by default today's)."""
    known_groups, title = DOCUMENTS.get(doc_id, ((), doc_id))
    return {"rank": rank, "doc_id": doc_id, "title": title, "groups": list(groups or known_groups), "score": 0.5}


def asked(user: str, groups: list[str], question: str, retrieved: list[dict[str, Any]]) -> LoggedQuestion:
    """A question refused by the recall check, asked now."""
    return LoggedQuestion(
        user, groups, question, "handbook", "refused-recall", 0.4, 0.65, retrieved, [], False, 0, 0, 0, None, None
    )


def write_log(data_dir: Path, entries: list[LoggedQuestion]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(asdict(e)) + "\n" for e in entries)
    (data_dir / "questions.jsonl").write_text(lines, encoding="utf-8")


def carlos_and_dana() -> list[LoggedQuestion]:
    carlos = asked(
        "carlos", ["everyone", "hr", "hr-compensation"], SALARY_QUESTION, [hit(SALARY_DOC), hit(HOLIDAY_DOC, 2)]
    )
    dana = asked("dana", ["everyone"], HOLIDAY_QUESTION, [hit(HOLIDAY_DOC)])
    return [carlos, dana]


def save_retrieval_run(folder: Path) -> Path:
    """A saved handbook run with one question about salary bands and one about holidays."""
    queries = [
        {
            "qid": "g:1",
            "question": SALARY_QUESTION,
            "metrics": {"ndcg@10": 1.0, "recall@10": 1.0},
            "top": [SALARY_DOC, HOLIDAY_DOC],
            "relevant": [SALARY_DOC],
        },
        {
            "qid": "g:2",
            "question": HOLIDAY_QUESTION,
            "metrics": {"ndcg@10": 1.0, "recall@10": 1.0},
            "top": [HOLIDAY_DOC],
            "relevant": [HOLIDAY_DOC],
        },
    ]
    run = {
        "dataset": "handbook-golden",
        "split": None,
        "mode": "hybrid",
        "settings": {},
        "aggregate": {"ndcg@10": 1.0, "recall@10": 1.0},
        "queries": queries,
        "seconds": 0.1,
        "created": "2026-01-02T10:00:00",
        "collection": "handbook",
    }
    return save_run(folder, str(run["created"]), "-handbook-golden-all-hybrid.json", run)
