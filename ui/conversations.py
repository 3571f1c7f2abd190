"""Each signed-in user's current conversation, kept across reloads of the chat page.

One file per user in `ASSISTANT_DATA_DIR/conversations/`, named by a hash of the user id (no name on disk), written
whole to a side file and renamed (a crash leaves the previous one). The exchanges are pickled as the page holds
them (the answers with their sources); the data directory already holds the index, so this stores nothing a
reader of that folder could not read there. Reading it back follows the question log's rule: an exchange whose
answer retrieved or cited a document the user may no longer read (re-grouped, deleted) is dropped, asked of the
store with the user's groups now; a file of another version, or one that does not load, is a new chat.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

from assistant.access import Principal
from assistant.answering import Answer
from assistant.retriever import Retriever

VERSION = 1


@dataclass
class Exchange:
    question: str
    answer: Answer
    feedback: bool | None = None  # True: helpful; set once recorded


def path_for(folder: Path, principal: Principal) -> Path:
    return folder / f"{hashlib.sha256(principal.user_id.encode('utf-8')).hexdigest()[:32]}.pickle"


def save(folder: Path, principal: Principal, exchanges: list[Exchange]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = path_for(folder, principal)
    side = path.with_suffix(".partial")
    side.write_bytes(pickle.dumps({"version": VERSION, "user": principal.user_id, "exchanges": exchanges}))
    os.replace(side, path)


def load(folder: Path, principal: Principal, retriever: Retriever) -> list[Exchange]:
    """The user's kept conversation, without the exchanges whose documents they may no longer read."""
    path = path_for(folder, principal)
    try:
        kept = pickle.loads(path.read_bytes())  # our own file, in the data directory
    except FileNotFoundError:
        return []
    except Exception:  # another version's classes, a truncated file: start afresh rather than fail the page
        return []
    if not isinstance(kept, dict) or kept.get("version") != VERSION or kept.get("user") != principal.user_id:
        return []
    exchanges: list[Exchange] = kept["exchanges"]
    readable = retriever.readable_doc_ids(principal, {d for e in exchanges for d in documents_of(e)})
    return [e for e in exchanges if documents_of(e) <= readable]


def documents_of(exchange: Exchange) -> set[str]:
    """Every document the exchange shows: retrieved (listed, or shown as closest passages) and cited."""
    answer = exchange.answer
    return {c.doc_id for c in answer.retrieved} | {c.doc_id for c in answer.citations}


def clear(folder: Path, principal: Principal) -> None:
    path_for(folder, principal).unlink(missing_ok=True)
