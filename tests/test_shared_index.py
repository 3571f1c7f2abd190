"""One embedded index, several processes: the holder of a shard serves it to the others (assistant/store/peer.py,
shared.py), a killed or exiting holder is replaced, only the index's own user can call, one sync at a time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client
from pathlib import Path

import pytest

from assistant.access import Principal
from assistant.errors import StoreError, SyncInProgressError
from assistant.locks import SyncLock
from assistant.store import SearchQuery, VectorSpace
from assistant.store.peer import PeerStore, peer_file
from assistant.store.shared import SharedEdgeStore
from tests.test_store import DIM, chunk, vec

C = "docs"
HOLDER = """
import sys
from pathlib import Path
from assistant.store import VectorSpace
from assistant.store.shared import SharedEdgeStore
from tests.test_store import chunk

store = SharedEdgeStore(Path(sys.argv[1]))
store.ensure_collection("docs", VectorSpace("test", 8))
store.write_chunks("docs", [chunk("open", 0, ("everyone",)), chunk("secret", 0, ("executives",))], {})
print("ready", flush=True)
sys.stdin.readline()
store.close()
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the shard of `docs` (two chunks: one for everyone, one for executives)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "index")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


def release(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.write("\n")
    process.stdin.flush()
    assert process.wait(timeout=30) == 0


def everyone_query() -> SearchQuery:
    return SearchQuery(dense=vec(1), sparse=None, limit=10)


def test_a_second_process_searches_and_writes_through_the_holder(holder: subprocess.Popen[str], tmp_path: Path) -> None:
    store = SharedEdgeStore(tmp_path / "index")
    try:
        dana = Principal("dana", frozenset({"everyone"}))
        found = [c.doc_id for c in store.search(C, dana, everyone_query())]
        assert found == ["open"]  # the holder applies the caller's groups: the executives' chunk never crosses
        assert store.holder(C) == f"pid {holder.pid}"
        store.write_chunks(C, [chunk("new", 0, ("everyone",))], {})
        assert store.count(C) == 3 and store.doc_ids(C) == {"open", "secret", "new"}

        release(holder)  # the holder exits: the next call takes the shard here, with everything written
        assert store.count(C) == 3
        assert store.holder(C) == "this process"
        assert peer_file(tmp_path / "index", C).exists()  # and serves it to the next process in turn
    finally:
        store.close()
    assert not peer_file(tmp_path / "index", C).exists()


def test_a_killed_holder_is_replaced(holder: subprocess.Popen[str], tmp_path: Path) -> None:
    store = SharedEdgeStore(tmp_path / "index")
    try:
        assert store.count(C) == 2
        os.kill(holder.pid, signal.SIGKILL)  # no clean-up: its address file stays behind, its lock does not
        holder.wait()
        assert peer_file(tmp_path / "index", C).exists()
        assert store.count(C) == 2
        assert store.holder(C) == "this process"
    finally:
        store.close()


def test_only_the_index_user_can_call_and_only_store_calls(holder: subprocess.Popen[str], tmp_path: Path) -> None:
    address_file = peer_file(tmp_path / "index", C)
    assert address_file.stat().st_mode & 0o777 == 0o600
    address = json.loads(address_file.read_text())["address"]
    with pytest.raises(AuthenticationError):
        Client(address, family="AF_UNIX", authkey=b"not-the-key")
    peer = PeerStore(tmp_path / "index", C)
    try:
        with pytest.raises(StoreError, match="refuses 'close'"):
            peer.call("close", C)
        with pytest.raises(StoreError, match="refuses 'count'"):
            peer.call("count", "another-collection")  # it serves the collection it holds, nothing else
        assert peer.call("count", C) == 2  # still serving after the refusals
    finally:
        peer.close()


def test_a_holder_that_does_not_share_gives_one_line(tmp_path: Path) -> None:
    from assistant.errors import IndexInUseError
    from assistant.store.edge import EdgeStore

    plain = EdgeStore(tmp_path / "index")  # takes the lock, serves nobody
    plain.ensure_collection(C, VectorSpace("test", DIM))
    store = SharedEdgeStore(tmp_path / "index")
    try:
        with pytest.raises(IndexInUseError, match="which does not share it"):
            store.count(C)
    finally:
        store.close()
        plain.close()


SYNCER = """
import sys, time
from pathlib import Path
from assistant.locks import SyncLock
with SyncLock(Path(sys.argv[1])):
    print("syncing", flush=True)
    sys.stdin.readline()
"""


def test_one_sync_at_a_time_across_processes_and_threads(tmp_path: Path) -> None:
    path = tmp_path / "sync.lock"
    other = subprocess.Popen(
        [sys.executable, "-c", SYNCER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "syncing"
        with pytest.raises(SyncInProgressError, match=f"a sync is running in pid {other.pid} "), SyncLock(path):
            pass
    finally:
        assert other.stdin is not None
        other.stdin.write("\n")
        other.stdin.close()
        other.wait(timeout=30)

    lock = SyncLock(path)
    order: list[str] = []

    def second() -> None:
        with lock:
            order.append("second")

    with lock:
        waiter = threading.Thread(target=second)
        waiter.start()
        waiter.join(timeout=0.3)
        assert waiter.is_alive()  # a second thread of this process waits its turn rather than failing
        order.append("first")
    waiter.join(timeout=10)
    assert order == ["first", "second"]


def test_a_closed_store_takes_no_shard_again(tmp_path: Path) -> None:
    store = SharedEdgeStore(tmp_path / "index")
    store.ensure_collection(C, VectorSpace("test", DIM))
    store.close()
    with pytest.raises(StoreError, match="is closed"):
        store.count(C)  # a late call (a shadow thread) after close: refused, the lock stays free
    other = SharedEdgeStore(tmp_path / "index")
    try:
        assert other.count(C) == 0 and other.holder(C) == "this process"
    finally:
        other.close()
