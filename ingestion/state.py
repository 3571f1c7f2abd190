"""The sync state: what was ingested into each collection, in SQLite inside the data directory.

The vector store is the truth for what is searchable; this state is the truth for what was ingested from
which bytes. Every store write happens before the state row that records it, so after a crash the state can
only be behind the store, never ahead: the next sync redoes the lagging documents (store writes are idempotent).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import CollectionMismatchError

# 2: documents.flags (signs of text aimed at the assistant, `ingestion.injection`); 3: documents.rule (the access
# rule that decided its groups) and the widenings table (every sync that gave a document more readers, and who ran it)
SCHEMA_VERSION = 3
_SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (
    name TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    collection TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    path TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    groups TEXT NOT NULL,
    front_matter_groups TEXT,
    version INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    title TEXT NOT NULL,
    updated REAL NOT NULL,
    flags TEXT NOT NULL DEFAULT '[]',
    rule TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (collection, doc_id)
);
"""
_WIDENINGS = """CREATE TABLE IF NOT EXISTS widenings (collection TEXT NOT NULL, doc_id TEXT NOT NULL,
groups_before TEXT NOT NULL, groups_after TEXT NOT NULL, rule_before TEXT NOT NULL, rule_after TEXT NOT NULL,
run_by TEXT NOT NULL, accepted INTEGER NOT NULL, at REAL NOT NULL)"""
_MIGRATIONS = {
    2: ["ALTER TABLE documents ADD COLUMN flags TEXT NOT NULL DEFAULT '[]'"],
    3: ["ALTER TABLE documents ADD COLUMN rule TEXT NOT NULL DEFAULT ''", _WIDENINGS],
}


@dataclass(frozen=True)
class DocumentState:
    doc_id: str
    path: str
    content_hash: str
    groups: tuple[str, ...]
    front_matter_groups: tuple[str, ...] | None
    version: int
    chunks: int
    title: str
    flags: tuple[str, ...] = ()  # signs of instructions or forged answer lines found when it was read
    rule: str = ""  # the access rule that decided its groups (`AccessRule.where`); "" when not recorded


@dataclass(frozen=True)
class Widening:
    """A document whose readers grew (a group it did not have before), with the rules that decided it."""

    doc_id: str
    groups_before: tuple[str, ...]
    groups_after: tuple[str, ...]
    rule_before: str
    rule_after: str

    @property
    def message(self) -> str:
        before = self.rule_before or "a rule not recorded (indexed before rules were recorded)"
        return (
            f"{self.doc_id}: readers grow from [{', '.join(self.groups_before)}] to [{', '.join(self.groups_after)}]"
            f" (decided by {before} before, by {self.rule_after} now)"
        )


class SyncState:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            self._db.executescript(_SCHEMA + _WIDENINGS + ";")
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            version = SCHEMA_VERSION
        for step in range(version + 1, SCHEMA_VERSION + 1):  # numbered migrations of an older state file
            for statement in _MIGRATIONS[step]:
                self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version={step}")

    def check_source(self, collection: str, source: str) -> None:
        """A collection mirrors one source; syncing another source into it would delete the first one's docs."""
        bound = self.source_of(collection)
        if bound is not None and bound != source:
            raise CollectionMismatchError(
                f"collection {collection!r} is synced from {bound}, not {source}; "
                "pass --collection NAME to ingest this source into a collection of its own, or --rebind if the "
                "corpus moved to this folder"
            )

    def record_source(self, collection: str, source: str) -> None:
        """Bind a collection to its source on its first real (not dry-run) sync."""
        self.check_source(collection, source)
        if self.source_of(collection) is None:
            self._db.execute("INSERT INTO collections VALUES (?,?,?)", (collection, source, time.time()))

    def rebind(self, collection: str, source: str) -> None:
        """The corpus moved: the collection mirrors `source` from now on (the caller checked they share documents)."""
        self._db.execute("UPDATE collections SET source=? WHERE name=?", (source, collection))

    def source_of(self, collection: str) -> str | None:
        row = self._db.execute("SELECT source FROM collections WHERE name=?", (collection,)).fetchone()
        return None if row is None else str(row[0])

    def documents(self, collection: str) -> dict[str, DocumentState]:
        rows = self._db.execute(
            "SELECT doc_id, path, content_hash, groups, front_matter_groups, version, chunks, title, flags, rule "
            "FROM documents WHERE collection=?",
            (collection,),
        )
        return {
            r[0]: DocumentState(
                r[0],
                r[1],
                r[2],
                tuple(json.loads(r[3])),
                None if r[4] is None else tuple(json.loads(r[4])),
                r[5],
                r[6],
                r[7],
                tuple(json.loads(r[8])),
                r[9],
            )
            for r in rows
        }

    def save(self, collection: str, docs: Iterable[DocumentState]) -> None:
        now = time.time()
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO documents VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        collection,
                        d.doc_id,
                        d.path,
                        d.content_hash,
                        json.dumps(list(d.groups)),
                        None if d.front_matter_groups is None else json.dumps(list(d.front_matter_groups)),
                        d.version,
                        d.chunks,
                        d.title,
                        now,
                        json.dumps(list(d.flags)),
                        d.rule,
                    )
                    for d in docs
                ],
            )

    def record_widenings(self, collection: str, widenings: Iterable[Widening], run_by: str, accepted: bool) -> None:
        """Keep who gave documents more readers, when, and whether the run was told to accept it."""
        now = time.time()
        with self._transaction():
            self._db.executemany(
                "INSERT INTO widenings VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    (
                        collection,
                        w.doc_id,
                        json.dumps(list(w.groups_before)),
                        json.dumps(list(w.groups_after)),
                        w.rule_before,
                        w.rule_after,
                        run_by,
                        int(accepted),
                        now,
                    )
                    for w in widenings
                ],
            )

    def widenings(self, collection: str) -> list[dict[str, object]]:
        """The recorded widenings of `collection`, oldest first."""
        rows = self._db.execute(
            "SELECT doc_id, groups_before, groups_after, rule_before, rule_after, run_by, accepted, at "
            "FROM widenings WHERE collection=? ORDER BY rowid",
            (collection,),
        )
        names = ("doc_id", "groups_before", "groups_after", "rule_before", "rule_after", "run_by", "accepted", "at")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def forget(self, collection: str, doc_ids: Iterable[str]) -> None:
        with self._transaction():
            self._db.executemany(
                "DELETE FROM documents WHERE collection=? AND doc_id=?", [(collection, d) for d in doc_ids]
            )

    def reset(self, collection: str) -> None:
        with self._transaction():
            self._db.execute("DELETE FROM documents WHERE collection=?", (collection,))

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()
