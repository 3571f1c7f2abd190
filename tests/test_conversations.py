"""A user's kept conversation: read back only as theirs, without the exchanges whose documents they may no
longer read, and a file that does not load is a new chat (`ui.conversations`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import cast

from assistant.access import Principal
from assistant.answering import Answer
from assistant.retriever import RetrievedChunk, Retriever
from ui import conversations
from ui.conversations import Exchange


class Readable:
    """The store's answer to "which of these may the principal read now", for a fixed set."""

    def __init__(self, documents: set[str]) -> None:
        self.documents = documents

    def readable_doc_ids(self, principal: Principal, doc_ids: Iterable[str]) -> set[str]:
        return set(doc_ids) & self.documents


def exchange(question: str, doc_id: str) -> Exchange:
    chunk = RetrievedChunk(1, 0.9, f"{doc_id}#0", doc_id, "Title", doc_id, None, ("everyone",), "Text.")
    return Exchange(question, Answer.refusal(question, [chunk], 0.1, None, None))


def test_a_kept_conversation_drops_what_its_user_can_no_longer_read(tmp_path: Path) -> None:
    dana = Principal.of("dana", ["everyone"])
    conversations.save(tmp_path, dana, [exchange("Holidays?", "company/holidays.md"), exchange("Pay?", "hr/pay.md")])
    both = conversations.load(tmp_path, dana, cast(Retriever, Readable({"company/holidays.md", "hr/pay.md"})))
    assert [e.question for e in both] == ["Holidays?", "Pay?"]
    regrouped = conversations.load(tmp_path, dana, cast(Retriever, Readable({"company/holidays.md"})))
    assert [e.question for e in regrouped] == ["Holidays?"]  # hr/pay.md was re-grouped away from her
    back = conversations.load(tmp_path, dana, cast(Retriever, Readable({"company/holidays.md", "hr/pay.md"})))
    assert [e.question for e in back] == ["Holidays?"]  # the file was rewritten without it
    assert conversations.path_for(tmp_path, dana).stat().st_mode & 0o077 == 0  # the app's own account only
    erin = Principal.of("erin", ["everyone", "hr"])
    assert conversations.load(tmp_path, erin, cast(Retriever, Readable({"hr/pay.md"}))) == []  # never another's
    assert "dana" not in conversations.path_for(tmp_path, dana).name  # no user id on disk


def test_every_exchange_after_one_now_unreadable_goes_too(tmp_path: Path) -> None:
    dana = Principal.of("dana", ["everyone"])
    asked = [exchange("Pay?", "hr/pay.md"), exchange("And holidays?", "company/holidays.md")]
    conversations.save(tmp_path, dana, asked)
    # The second answer was written with the first in its prompt: it may repeat what hr/pay.md said.
    assert conversations.load(tmp_path, dana, cast(Retriever, Readable({"company/holidays.md"}))) == []


def test_a_file_that_does_not_load_is_a_new_chat(tmp_path: Path) -> None:
    dana = Principal.of("dana", ["everyone"])
    tmp_path.mkdir(exist_ok=True)
    conversations.path_for(tmp_path, dana).write_bytes(b"not a pickle")
    assert conversations.load(tmp_path, dana, cast(Retriever, Readable(set()))) == []
    conversations.clear(tmp_path, dana)
    assert not conversations.path_for(tmp_path, dana).exists()
