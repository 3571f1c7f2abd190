"""Each signed-in user's current conversation, kept across reloads of the chat page.

One file per user in `ASSISTANT_DATA_DIR/conversations/`, named by a hash of the user id (no name on disk), readable
by the app's own account only (0600), written whole to a side file and renamed (a crash leaves the previous one).
The exchanges are pickled as the page holds them (the answers with their sources). Reading it back follows the
question log's rule: from the first exchange whose answer retrieved or cited a document the user may no longer read
(re-grouped, deleted), that exchange and every later one are dropped (a later answer was written with the earlier
ones in its prompt, so it may repeat what they said), asked of the store with the user's groups now; the file is
then rewritten without them, so a withdrawn document's text does not stay on disk. A file of another layout of
these classes, or one that does not load, is a new chat.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

from assistant.access import Principal
from assistant.answering import Answer
from assistant.retriever import Retriever

log = logging.getLogger(__name__)


@dataclass
class Exchange:
    question: str
    answer: Answer
    feedback: bool | None = None  # True: helpful; set once recorded


def _layout() -> str:
    """The fields of what is pickled: a file written under other classes is not read back (no version to bump)."""
    names = [f"{cls.__name__}:{','.join(f.name for f in dataclasses.fields(cls))}" for cls in (Exchange, Answer)]
    return hashlib.sha256(";".join(names).encode("utf-8")).hexdigest()[:16]


def path_for(folder: Path, principal: Principal) -> Path:
    return folder / f"{hashlib.sha256(principal.user_id.encode('utf-8')).hexdigest()[:32]}.pickle"


def save(folder: Path, principal: Principal, exchanges: list[Exchange]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = pickle.dumps({"layout": _layout(), "user": principal.user_id, "exchanges": exchanges})
    handle, side = tempfile.mkstemp(dir=folder, suffix=".partial")  # 0600, one per save: two tabs never collide
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(side, path_for(folder, principal))
    except BaseException:
        Path(side).unlink(missing_ok=True)
        raise


def load(folder: Path, principal: Principal, retriever: Retriever) -> list[Exchange]:
    """The user's kept conversation up to its first exchange showing a document they may no longer read."""
    path = path_for(folder, principal)
    try:
        kept = pickle.loads(path.read_bytes())  # our own file, in the data directory
    except FileNotFoundError:
        return []
    except Exception as exc:  # a truncated or foreign file: start afresh rather than fail the page
        log.warning("kept conversation %s not read (%s): a new chat", path.name, type(exc).__name__)
        return []
    if not isinstance(kept, dict) or kept.get("layout") != _layout() or kept.get("user") != principal.user_id:
        return []
    exchanges: list[Exchange] = kept["exchanges"]
    readable = retriever.readable_doc_ids(principal, {d for e in exchanges for d in documents_of(e)})
    still = next((n for n, e in enumerate(exchanges) if not documents_of(e) <= readable), len(exchanges))
    if still < len(exchanges):
        save(folder, principal, exchanges[:still])  # what they may no longer read leaves the disk too
    return exchanges[:still]


def documents_of(exchange: Exchange) -> set[str]:
    """Every document the exchange shows: retrieved (listed, or shown as closest passages) and cited."""
    answer = exchange.answer
    return {c.doc_id for c in answer.retrieved} | {c.doc_id for c in answer.citations}


def clear(folder: Path, principal: Principal) -> None:
    path_for(folder, principal).unlink(missing_ok=True)
