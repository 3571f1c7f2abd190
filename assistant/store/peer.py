"""The embedded index, shared with other processes of the same user: its holder serves the store's calls on a
local socket, and a second process (`assistant ask` beside the running app) calls them there.

Qdrant Edge opens a shard in one process only and has no read-only open, so the process holding a shard's lock
(`assistant/locks.py`) answers the others: `IndexServer` listens on a Unix socket in a private temporary folder
and writes where, with a random key, to `<collection>.peer.json` (mode 0600) beside the shard; `PeerStore` reads
that file and calls the holder. The standard library's `multiprocessing.connection` does the transport: it
authenticates both ends with the key (HMAC challenge) before it unpickles anything, so only a process that can read
the 0600 file, the index's own user, can call. The holder runs each call on its own store (whose calls are
serialised anyway), so one writer and one set of access filters stay in charge; a peer's calls carry its caller's
groups like any other.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import threading
import time
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

from assistant import errors
from assistant.errors import AssistantError, StoreError

# The store calls a peer may make (`close` is the holder's own business).
CALLS = frozenset(
    {
        "ensure_collection",
        "write_chunks",
        "chunk_ids",
        "set_groups",
        "delete_documents",
        "purge_tombstones",
        "finish_writes",
        "doc_ids",
        "count",
        "iter_chunks",
        "search",
        "readable_doc_ids",
    }
)


class PeerGone(Exception):
    """The holder stopped serving (it exited or is closing): take the index, or find the new holder."""


def peer_file(root: Path, collection: str) -> Path:
    return root / f"{collection}.peer.json"


class IndexServer:
    """Serves `store`'s calls for `collection` to other processes until `close`."""

    def __init__(self, store: Any, root: Path, collection: str) -> None:
        self._store = store
        self._collection = collection
        self._closed = threading.Event()
        self._gate = threading.Lock()  # `close` waits for a call in flight; no call starts after it
        self._folder = Path(tempfile.mkdtemp(prefix="assistant-index-"))  # 0700: a short path (sockets: 108 bytes)
        key = secrets.token_bytes(32)
        self._listener = Listener(str(self._folder / "index.sock"), family="AF_UNIX", authkey=key)
        self._file = peer_file(root, collection)
        record = {"pid": os.getpid(), "address": str(self._folder / "index.sock"), "key": key.hex()}
        unfinished = self._file.with_suffix(".partial")
        descriptor = os.open(unfinished, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
        os.replace(unfinished, self._file)
        threading.Thread(target=self._accept, name=f"index-server-{collection}", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection = self._listener.accept()
            except (EOFError, AuthenticationError):  # a caller without the key
                continue
            except OSError:  # closed; or out of descriptors for now: do not spin
                time.sleep(0.1)
                continue
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: Connection) -> None:
        with connection:
            while True:
                try:
                    name, args = connection.recv()
                except (EOFError, OSError):
                    return
                except Exception as exc:  # a call this version cannot read: say so, keep serving
                    connection.send(("error", ("StoreError", f"the index server could not read the call: {exc}")))
                    continue
                connection.send(self._call(name, args))

    def _call(self, name: str, args: tuple[Any, ...]) -> tuple[str, Any]:
        with self._gate:
            if self._closed.is_set():
                return ("gone", None)
            return self._run(name, args)

    def _run(self, name: str, args: tuple[Any, ...]) -> tuple[str, Any]:
        if name not in CALLS or not args or args[0] != self._collection:
            return ("error", ("StoreError", f"the index server refuses {name!r} on {args[:1]!r}"))
        try:
            result = getattr(self._store, name)(*args)
            return ("ok", list(result) if name == "iter_chunks" else result)  # a scroll runs here, inside the try
        except (AssistantError, ValueError) as exc:  # a refusal travels as its kind and its one line
            return ("error", (type(exc).__name__, str(exc)))
        except Exception as exc:  # anything else too: the caller's CLI prints one line, the server lives on
            return ("error", ("StoreError", f"the process holding the index failed: {exc}"))

    def close(self) -> None:
        """Stop answering (a call arriving now is told to retry), remove the address file, close the socket."""
        with self._gate:
            self._closed.set()
        self._file.unlink(missing_ok=True)
        self._listener.close()
        shutil.rmtree(self._folder, ignore_errors=True)


class PeerStore:
    """Calls to the holder of one collection, over its socket. Raises `PeerGone` when the holder stopped."""

    def __init__(self, root: Path, collection: str) -> None:
        path = peer_file(root, collection)
        try:
            owner = path.stat()
            if owner.st_uid != os.getuid() or owner.st_mode & 0o077:  # only the index's own user may name a server
                raise PeerGone(f"{path} is not this user's private file: not calling the address it names")
            record = json.loads(path.read_text(encoding="utf-8"))
            self.pid = int(record["pid"])
            self._connection = Client(record["address"], family="AF_UNIX", authkey=bytes.fromhex(record["key"]))
        except (OSError, ValueError, KeyError, TypeError, EOFError, AuthenticationError) as exc:
            raise PeerGone(str(exc)) from exc
        self._lock = threading.Lock()  # one call at a time on this connection

    def call(self, name: str, *args: Any) -> Any:
        with self._lock:
            try:
                self._connection.send((name, args))
                status, value = self._connection.recv()
            except (EOFError, OSError) as exc:
                raise PeerGone(str(exc)) from exc
        if status == "gone":
            raise PeerGone("the holder is closing")
        if status == "error":
            kind, message = value
            raise _rebuilt(kind, message)
        return value

    def close(self) -> None:
        self._connection.close()


def _rebuilt(kind: str, message: str) -> Exception:
    """The holder's error as this process raises it: ValueError, or the domain error of that name."""
    if kind == "ValueError":
        return ValueError(message)
    found = getattr(errors, kind, None)
    if isinstance(found, type) and issubclass(found, AssistantError) and found is not errors.AccessPolicyError:
        return found(message)
    return StoreError(message)
