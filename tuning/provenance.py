"""Where each training example's text came from, and who may read that text now.

Every example line names the documents whose text it shows: `"sources": [{"collection", "doc_id", "groups"}]`
(`groups` as they were when `tune build-data` wrote it). A line that shows no document's text (a question and the
refusal, or hand-written text) says so with `"sources": []` and `"curated": true`. `tune check` and `tune train`
look every source up in the index's sync state and refuse a line, naming its file and line, when:
- it has no `sources` (fail closed: text of unknown origin);
- a source is no longer in the index (deleted, or the data was built against another index) or has no groups;
- a source's groups, now or when the line was built, are not all in the recipe's `data.allowed_groups`.

Training reads each file once (`read_example_file`): the rows it trains on, the sha256 of those exact bytes and
the groups of their sources (now and when built) come from the same bytes; the registry keeps a copy of them with
the adapter, and the runtime re-hashes that copy before serving it (`assistant/adapters.py`).

A line's words are checked too (`tuning.restricted_text`): 8 words in a row shared with a chunk the allowed groups
may not read refuse the line, naming that document (not its text), whatever sources it declares. Not proved here:
that a paraphrase of restricted text is absent; the copy kept with the adapter is the audit trail.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError
from assistant.settings import Settings
from ingestion.catalog import read_catalog
from tuning.restricted_text import RUN, RestrictedText

TRAIN, VALIDATION = "train.jsonl", "validation.jsonl"


class LineRefused(Exception):
    """One example line cannot be trained on; `code` names the kind of problem (as `tune check` reports it)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Source:
    collection: str
    doc_id: str
    groups: tuple[str, ...]  # the document's groups when the example was built
    hash: str | None = None  # the document's content hash as indexed then (None: data built before it was kept)

    def to_json(self) -> dict[str, Any]:
        found = {"collection": self.collection, "doc_id": self.doc_id, "groups": list(self.groups)}
        return found | ({"hash": self.hash} if self.hash else {})


def source_fields(sources: tuple[Source, ...]) -> dict[str, Any]:
    """The provenance fields of an example line: its sources, or the curated mark when it shows no document."""
    return {"sources": [s.to_json() for s in sources], **({} if sources else {"curated": True})}


def numbered_lines(raw: bytes) -> Iterator[tuple[int, str | None]]:
    """(line number, text) of each non-blank line; text is None for a line that is not UTF-8."""
    for number, chunk in enumerate(raw.split(b"\n"), start=1):
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError:
            yield number, None
            continue
        if text.strip():
            yield number, text


NOT_UTF8 = "the line is not UTF-8 text: save the file as UTF-8"


def parse_record(line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise LineRefused("invalid-json", f"{exc.msg} at column {exc.colno}") from None
    if not isinstance(record, dict):
        raise LineRefused("not-an-object", "each line must be one JSON object")
    return record


def sources_of(record: dict[str, Any]) -> list[Source]:
    """The documents a line says it shows."""
    raw = record.get("sources")
    if raw is None:
        raise LineRefused(
            "no-sources",
            "no 'sources': name the documents whose text the example shows (tune build-data writes them), "
            'or mark text of no document with "sources": [], "curated": true',
        )
    if not isinstance(raw, list) or not all(_is_source(s) for s in raw):
        raise LineRefused("bad-sources", "'sources' must be a list of {collection, doc_id, groups} objects")
    if not raw and record.get("curated") is not True:
        raise LineRefused("no-sources", "'sources' is empty: text of no document must say \"curated\": true")
    return [Source(s["collection"], s["doc_id"], tuple(s.get("groups", [])), s.get("hash")) for s in raw]


def _is_source(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    groups = value.get("groups", [])
    return (
        isinstance(value.get("collection"), str)
        and isinstance(value.get("doc_id"), str)
        and isinstance(groups, list)
        and all(isinstance(g, str) for g in groups)
        and isinstance(value.get("hash") or "", str)
    )


class IndexGroups:
    """Each document's groups as the index holds them now (its sync state), read once per collection."""

    def __init__(self, read: Callable[[str], dict[str, tuple[str, ...]]]) -> None:
        self._read = read
        self._collections: dict[str, dict[str, tuple[str, ...]]] = {}

    @classmethod
    def of(cls, settings: Settings) -> IndexGroups:
        def read(collection: str) -> dict[str, tuple[str, ...]]:
            if not settings.state_path.is_file():  # no index yet: every source is unknown
                return {}
            return {d.doc_id: d.groups for d in read_catalog(settings, collection).documents}

        return cls(read)

    def groups(self, source: Source) -> tuple[str, ...] | None:
        """The document's groups now; None when the index does not hold it."""
        if source.collection not in self._collections:
            self._collections[source.collection] = self._read(source.collection)
        return self._collections[source.collection].get(source.doc_id)


@dataclass(frozen=True)
class SourcePolicy:
    """Which documents may give text to training data: those whose groups are all in `allowed`. With `text`, every
    line's words are also checked against the restricted text of `collections` and of the collections it names."""

    index: IndexGroups
    allowed: frozenset[str]
    text: RestrictedText | None = None
    collections: tuple[str, ...] = ()

    def groups_of(self, record: dict[str, Any]) -> frozenset[str]:
        """The groups of every document whose text `record` shows, now and when built; refused outside `allowed`,
        and refused when its words copy a document outside `allowed`, whatever sources it names."""
        found: set[str] = set()
        sources = sources_of(record)
        for source in sources:
            found |= self._source_groups(source)
        if self.text is not None:
            named = dict.fromkeys([*self.collections, *(s.collection for s in sources)])
            copied = self.text.first_source("\n".join(learned_strings(record)), named)
            if copied is not None:
                raise LineRefused(
                    "restricted-text",
                    f"the line shares {RUN} or more words in a row with {copied}, which the recipe's "
                    "data.allowed_groups may not read, whatever its sources say: drop the line or write it anew",
                )
        return frozenset(found)

    def _source_groups(self, source: Source) -> set[str]:
        where = f"{source.collection}:{source.doc_id}"
        now = self.index.groups(source)
        if now is None:
            raise LineRefused(
                "source-not-indexed",
                f"source {where} is not in the index (deleted, or built against another index): build the data again",
            )
        if not now:
            raise LineRefused("source-unreadable", f"source {where} has no groups: nobody may read it; drop the line")
        groups = set(now) | set(source.groups)
        if not groups <= self.allowed:
            raise LineRefused(
                "source-restricted",
                f"source {where} is readable by groups {', '.join(sorted(groups))}, not all in the recipe's "
                f"data.allowed_groups ({', '.join(sorted(self.allowed))}): drop the line or rebuild the data",
            )
        return groups


@dataclass(frozen=True)
class ExampleFile:
    """One training JSONL as training read it: its bytes, the rows trained on and their sources' groups."""

    name: str
    raw: bytes = field(repr=False)
    rows: list[dict[str, str]]
    groups: frozenset[str]
    # (collection, doc_id, content hash and groups when built) of each document that gave text, with its examples
    sources: dict[tuple[str, str, str | None, tuple[str, ...]], int] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


@dataclass(frozen=True)
class TrainingData:
    train: ExampleFile
    validation: ExampleFile

    @property
    def files(self) -> tuple[ExampleFile, ExampleFile]:
        return self.train, self.validation

    @property
    def groups(self) -> frozenset[str]:
        """The groups of every document that gave text to either file (the adapter's data groups)."""
        return self.train.groups | self.validation.groups

    def source_documents(self) -> list[dict[str, Any]]:
        """Each document the examples show, with its content hash as built and how many examples show it: what
        the adapter learned from, kept in its record to tell when those documents change."""
        counts: Counter[tuple[str, str, str | None, tuple[str, ...]]] = Counter()
        for file in self.files:
            counts.update(file.sources)
        return [
            {"collection": collection, "doc_id": doc_id, "hash": digest, "groups": list(groups), "examples": n}
            for (collection, doc_id, digest, groups), n in sorted(counts.items(), key=lambda i: (i[0][0], i[0][1]))
        ]


def read_example_file(path: Path, policy: SourcePolicy) -> ExampleFile:
    """Every example of `path` (prompt / completion) with its sources checked; the first bad line is an error
    naming the file and line."""
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; build the data first: assistant tune build-data --recipe ...")
    raw = path.read_bytes()
    rows: list[dict[str, str]] = []
    groups: set[str] = set()
    sources: Counter[tuple[str, str, str | None, tuple[str, ...]]] = Counter()
    for number, line in numbered_lines(raw):
        try:
            record = record_of_line(line)
            groups |= policy.groups_of(record)
            rows.append(_prompt_completion(record))
            sources.update({(s.collection, s.doc_id, s.hash, s.groups) for s in sources_of(record)})
        except LineRefused as exc:
            raise ConfigError(f"{path}:{number}: {exc}; `assistant tune check {path}` lists every problem") from None
    return ExampleFile(path.name, raw, rows, frozenset(groups), dict(sources))


def learned_strings(value: Any) -> Iterator[str]:
    """Every string of an example line but its provenance: the text a model would learn."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, inner in value.items():
            if key != "sources":
                yield from learned_strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from learned_strings(inner)


def record_of_line(line: str | None) -> dict[str, Any]:
    """The JSON object of one example line (None: a line that is not UTF-8), else LineRefused saying why not."""
    if line is None:
        raise LineRefused("not-utf8", NOT_UTF8)
    return parse_record(line)


def _prompt_completion(record: dict[str, Any]) -> dict[str, str]:
    prompt, completion = record.get("prompt"), record.get("completion")
    if not isinstance(prompt, str) or not isinstance(completion, str):
        raise LineRefused("unknown-shape", "training reads 'prompt' and 'completion' strings")
    return {"prompt": prompt, "completion": completion}
