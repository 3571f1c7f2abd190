"""Where documents come from: a folder tree, or a BEIR-format corpus.jsonl.

A source lists entries (stable document id + a display path) and reads one entry's bytes on demand, so a sync
can hash everything cheaply and parse only what changed. Per-file problems become `SourceFailure`s: the sync
reports them and goes on with the rest.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from assistant.errors import DocumentError, SourceError
from assistant.terminal import has_control, visible
from ingestion.access_policy import POLICY_FILE, AccessPolicy, normalise_id


@dataclass(frozen=True)
class SourceEntry:
    doc_id: str  # NFC-normalised, so the same name typed on two systems is one document
    path: str  # what a person should look at: relative path as on disk, or corpus.jsonl:LINE
    kind: str  # how to parse it: a file suffix such as ".md", or "beir"


@dataclass(frozen=True)
class SourceFailure:
    path: str
    error: str
    # The document the failure belongs to. None: the entry could not be identified (a malformed corpus line),
    # so the sync cannot tell which indexed documents are really gone and deletes none of them.
    doc_id: str | None = None


class Source(Protocol):
    location: str
    policy: AccessPolicy

    def entries(self) -> Iterator[SourceEntry | SourceFailure]: ...

    def read(self, entry: SourceEntry) -> bytes:
        """The entry's bytes; raises DocumentError with a reason a person can act on."""

    def ignored(self) -> list[str]:
        """Files skipped because their type is not read (known after `entries()` ran)."""


def _printable(rel: str) -> str:
    """A path as text: bytes of a name that is not UTF-8 shown as \\xNN, so it can be printed and stored."""
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _naming_problem(rel: str, taken_by: str | None) -> str | None:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return "the file name is not valid UTF-8, so it cannot be a document id; rename the file"
    if has_control(rel):
        return (
            f"the file name holds control characters ({visible(rel)!r}): they would act on a terminal that prints it; "
            "rename the file"
        )
    if taken_by is not None:
        return f"names the same document as {taken_by!r} once Unicode is normalised (NFC); rename one of them"
    return None


def _mb(size: int) -> str:
    return f"{size / 1_048_576:.1f} MB"


class FolderSource:
    """Every supported file under `root`, recursively; ids are paths relative to the root, with `/`, in NFC."""

    def __init__(self, root: Path, policy: AccessPolicy | None, extensions: list[str], max_bytes: int) -> None:
        if not root.is_dir():
            raise SourceError(f"{root} is not a folder; give the corpus root (the folder holding {POLICY_FILE})")
        self.root = root.resolve()
        self.location = str(self.root)
        self.policy = policy if policy is not None else AccessPolicy.load(self.root / POLICY_FILE)
        self._extensions = {e.lower() for e in extensions}
        self._max_bytes = max_bytes
        self._ignored: list[str] = []

    def ignored(self) -> list[str]:
        return self._ignored

    def entries(self) -> Iterator[SourceEntry | SourceFailure]:
        self._ignored = []
        unlisted: list[OSError] = []  # folders that could not be listed: their documents are unknown, not gone
        named: dict[str, str] = {}  # doc id -> the path that took it
        for folder, dirs, files in os.walk(self.root, onerror=unlisted.append):
            linked = sorted(d for d in dirs if (Path(folder) / d).is_symlink())
            for name in linked:  # os.walk does not follow them: say so, rather than skip their files silently
                rel = (Path(folder) / name).relative_to(self.root).as_posix()
                self._ignored.append(f"{_printable(rel)}/ (a symbolic link to a folder: not followed)")
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in linked)
            for name in sorted(files):
                path = Path(folder) / name
                rel = path.relative_to(self.root).as_posix()
                if name.startswith(".") or rel == POLICY_FILE:
                    continue
                if path.suffix.lower() not in self._extensions:
                    self._ignored.append(_printable(rel))
                    continue
                doc_id = normalise_id(rel)
                problem = _naming_problem(rel, named.get(doc_id)) or self._check(path)
                if problem:
                    yield SourceFailure(_printable(rel), problem, doc_id=_printable(doc_id))
                else:
                    named[doc_id] = rel
                    yield SourceEntry(doc_id=doc_id, path=rel, kind=path.suffix.lower())
        for error in unlisted:
            where = Path(error.filename).relative_to(self.root).as_posix() if error.filename else "."
            yield SourceFailure(
                f"{_printable(where)}/", f"folder could not be listed ({error.strerror}); fix its permissions"
            )

    def _check(self, path: Path) -> str | None:
        if path.is_symlink():
            # A link would be judged by its own path's rule but serve its target's bytes: never follow one.
            if not path.exists():
                return f"broken symbolic link (to {os.readlink(path)}); remove it"
            return "symbolic links are not followed (access rules apply to paths); copy the file in instead"
        try:
            size = path.stat().st_size
        except OSError as exc:
            return f"cannot be read ({exc.strerror}); check the file's permissions"
        if size == 0:
            return "empty file; add content or delete it"
        if size > self._max_bytes:
            return (
                f"{_mb(size)}, over the {_mb(self._max_bytes)} limit (ingest.max_file_bytes); "
                "split the file or raise the limit"
            )
        if not os.access(path, os.R_OK):
            return "cannot be read (permission denied); check the file's permissions"
        return None

    def read(self, entry: SourceEntry) -> bytes:
        # O_NOFOLLOW: a file swapped for a symbolic link after it was listed is refused, never followed.
        try:
            fd = os.open(self.root / entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise DocumentError("became a symbolic link while the sync ran; links are not followed") from None
            raise DocumentError(f"cannot be read ({exc.strerror}); check the file's permissions") from exc
        with os.fdopen(fd, "rb") as handle:
            return handle.read()


class BeirSource:
    """A BEIR corpus.jsonl: one `{"_id", "title", "text"}` per line; ids are `_id`."""

    def __init__(self, corpus: Path, policy: AccessPolicy | None) -> None:
        if not corpus.is_file():
            raise SourceError(f"{corpus} does not exist; give a BEIR corpus.jsonl or a folder")
        self.corpus = corpus.resolve()
        self.location = str(self.corpus)
        beside = self.corpus.parent / POLICY_FILE
        if policy is None and not beside.exists():
            raise SourceError(
                f"{corpus} has no {POLICY_FILE} beside it; pass --groups G1,G2 to say who may read this corpus"
            )
        self.policy = policy if policy is not None else AccessPolicy.load(beside)
        self._docs: dict[str, bytes] = {}

    def ignored(self) -> list[str]:
        return []

    def entries(self) -> Iterator[SourceEntry | SourceFailure]:
        self._docs = {}
        with self.corpus.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                where = f"{self.corpus.name}:{number}"
                if not line.strip():
                    continue
                try:
                    doc_id, body = _beir_record(json.loads(line))
                except (ValueError, KeyError, TypeError) as exc:
                    yield SourceFailure(where, f"not a BEIR document line ({exc}); each line needs _id and text")
                    continue
                if doc_id in self._docs:
                    yield SourceFailure(where, f"duplicate _id {doc_id!r}; ids must be unique", doc_id=doc_id)
                    continue
                self._docs[doc_id] = json.dumps(body, ensure_ascii=False).encode("utf-8")
                yield SourceEntry(doc_id=doc_id, path=where, kind="beir")

    def read(self, entry: SourceEntry) -> bytes:
        return self._docs[entry.doc_id]


def _beir_record(record: object) -> tuple[str, dict[str, str]]:
    """(doc id, {title, text}) of one corpus line; a null or non-text field is an error, never the text "None"."""
    if not isinstance(record, dict):
        raise TypeError("the line is not a JSON object")
    doc_id, text, title = record["_id"], record["text"], record.get("title")
    if isinstance(doc_id, bool) or not isinstance(doc_id, str | int) or not str(doc_id).strip():
        raise ValueError(f"_id must be a non-empty string or integer, not {json.dumps(doc_id)}")
    if str(doc_id).startswith("/") or ".." in str(doc_id).split("/") or has_control(str(doc_id)):
        # Ids are matched by access rules as paths relative to the corpus: one must not read as a path outside it.
        raise ValueError(f"_id {visible(str(doc_id))!r} starts with '/', holds a '..' segment or a control character")
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, not {json.dumps(text)[:40]}")
    if title is not None and not isinstance(title, str):
        raise ValueError(f"title must be a string, not {json.dumps(title)[:40]}")
    return normalise_id(str(doc_id)), {"title": title or "", "text": text}


def open_source(location: Path, policy: AccessPolicy | None, extensions: list[str], max_bytes: int) -> Source:
    """A folder becomes a FolderSource; a `.jsonl` file a BeirSource (a BEIR directory means its corpus.jsonl)."""
    if location.is_dir() and (location / "corpus.jsonl").is_file() and not (location / POLICY_FILE).exists():
        return BeirSource(location / "corpus.jsonl", policy)
    if location.suffix == ".jsonl":
        return BeirSource(location, policy)
    return FolderSource(location, policy, extensions, max_bytes)
