"""`assistant tune build-data`: RAFT-style training examples (arXiv 2403.10131) from reviewed items.

For each item: retrieve through the real retriever as a principal of the allowed groups, show the blocks the
runtime would show (the oracle chunk, the one holding the item's quotes, among retrieved distractors, at a varied
position), and target the item's answer in the house format citing the oracle's block number. For a share of
answerable items the oracle is dropped and the target is the refusal; unanswerable items always target it.
Everything is rendered through `assistant/prompt.py`, the template the runtime serves with.

Access control: one adapter serves every user, so only documents whose groups are all in `allowed_groups` may
give text (oracle or distractor) to an example; what was excluded, and why, is reported. Each example names its
sources (the item's document and every shown block's document, with their groups), which `tune check` and
`tune train` check again against the index (`tuning/provenance.py`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.access import Principal
from assistant.components import Components
from assistant.errors import ConfigError
from assistant.json_file import read_json, write_json
from assistant.progress import NO_PROGRESS, Progress
from assistant.prompt import MODEL_REFUSAL, ContextBlock, normalise_space, render_answer, render_training_example
from assistant.recipe import Recipe
from assistant.store import StoredChunk
from evals.held_out import held_out_index, training_exclusion, words
from evals.near_duplicates import NearDuplicates
from ingestion.run import run_ingest
from tuning.items import Item, load_items, scifact_items
from tuning.provenance import LineRefused, Source, numbered_lines, record_of_line, source_fields

RETRIEVED = 10  # candidates retrieved per item; distractors are the best that are not the oracle


@dataclass(frozen=True)
class ExampleMeta:
    """What an example was built from (its `meta` in the JSONL; read by people, not by training)."""

    item: str
    source: str  # which corpus the item belongs to: "handbook", "scifact", ...
    question: str
    doc_id: str | None
    oracle_block: int | None  # 1-based block holding the answer; None: the target is the refusal
    blocks: int

    @property
    def target(self) -> str:
        return "answer" if self.oracle_block is not None else "refusal"

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "target": self.target}


@dataclass(frozen=True)
class Example:
    id: str
    prompt: str
    completion: str
    meta: ExampleMeta
    sources: tuple[Source, ...]  # every document whose text it shows; () for none (question and refusal only)

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "completion": self.completion,
            **source_fields(self.sources),
            "meta": self.meta.to_json(),
        }


@dataclass
class BuildReport:
    examples: list[Example] = field(default_factory=list)
    excluded: Counter[str] = field(default_factory=Counter)  # reason -> items
    excluded_items: list[str] = field(default_factory=list)  # "id: reason"
    excluded_distractors: int = 0  # retrieved chunks of documents outside the allowed groups
    dropped_refusals: int = 0  # refusal examples left out to keep data.max_refusal_share
    data_groups: set[str] = field(default_factory=set)  # groups of every document that gave text
    kept_lines: list[dict[str, Any]] = field(default_factory=list)  # earlier lines kept as they were (changed-only)
    rebuilt_items: int = 0  # items built again because a document their examples show changed (changed-only)

    def exclude(self, item: Item, reason: str, detail: str = "") -> None:
        self.excluded[reason] += 1
        self.excluded_items.append(f"{item.id}: {reason}" + (f" ({detail})" if detail else ""))


SCIFACT_COLLECTION = "tuning-scifact"  # SciFact ingested for everyone by `tune build-data`; `tune eval` asks it


def build(
    components: Components,
    recipe: Recipe,
    repo: Path,
    progress: Progress = NO_PROGRESS,
    previous: dict[str, list[dict[str, Any]]] | None = None,
) -> BuildReport:
    """The recipe's examples, after syncing its corpora into the index. With `previous` (the lines built before,
    by split), only the items whose examples show a document changed or deleted since are built again; the other
    lines are kept as they were (`report.kept_lines`)."""
    data = recipe.data
    _check_oracle_rule(data.oracle_position)  # before the first ingest, not at the first example
    rng = random.Random(data.seed)
    report = BuildReport()
    allowed = frozenset(data.allowed_groups)
    jobs: list[tuple[str, list[Item]]] = []
    for source in data.sources:
        run_ingest(components, repo / source.corpus, source.collection, progress=progress)
        jobs.append((source.collection, load_items(repo / source.items, source.collection)))
    if data.scifact:
        root = (repo / data.scifact).resolve()
        run_ingest(components, root / "corpus.jsonl", SCIFACT_COLLECTION, ["everyone"], progress=progress)
        claims = scifact_items(root, "train")
        sample = random.Random(data.seed).sample(claims, min(data.scifact_examples, len(claims)))
        jobs.append((SCIFACT_COLLECTION, sample))
    if previous is not None:
        jobs = _changed_only(components, jobs, [line for lines in previous.values() for line in lines], report)
    principal = Principal.of("tuning-data", sorted(allowed))
    held_out = held_out_index(repo)
    kept_questions = NearDuplicates()  # no two examples with near-duplicate questions (`tune check` rule)
    for collection, items in jobs:
        chunks_of = chunks_by_document(components, collection)
        retriever = components.retriever(collection)
        progress.start(f"examples ({collection})", len(items))
        for item in items:
            progress.advance(f"examples ({collection})")
            excluded = training_exclusion(item.question, held_out, kept_questions)
            if excluded is not None:
                report.exclude(item, *excluded)
                continue
            kept_questions.add(words(item.question))
            retrieved = retriever.search(principal, item.question, top_k=RETRIEVED).chunks
            example = _example(item, retrieved, chunks_of, allowed, recipe, rng, report, collection)
            if example is not None:
                report.examples.append(example)
        progress.finish(f"examples ({collection})")
    cap_refusals(report, data.max_refusal_share, random.Random(data.seed))
    return report


def _changed_only(
    components: Components, jobs: list[tuple[str, list[Item]]], previous: list[dict[str, Any]], report: BuildReport
) -> list[tuple[str, list[Item]]]:
    """The jobs cut to the items of earlier lines that show a document whose content hash in the index differs
    from the line's (or that is gone); every other earlier line goes to `report.kept_lines` unchanged."""
    now = {
        collection: {
            doc_id: chunks[0].doc_hash for doc_id, chunks in chunks_by_document(components, collection).items()
        }
        for collection, _ in jobs
    }

    def stale(line: dict[str, Any]) -> bool:
        for source in line.get("sources") or []:
            current = now.get(source["collection"])
            if current is None:
                continue  # a collection this recipe does not build from
            indexed = current.get(source["doc_id"])
            if indexed is None or (source.get("hash") and indexed != source["hash"]):
                return True  # deleted, or changed since the line was built
        return False

    def item(line: dict[str, Any]) -> str | None:
        return (line.get("meta") or {}).get("item")

    # An item's examples are built again together; a stale line naming no item (written by hand) is left out.
    items = {item(line) for line in previous if stale(line)} - {None}
    report.kept_lines = [line for line in previous if item(line) not in items and not stale(line)]
    report.rebuilt_items = len(items)
    return [(collection, [item for item in batch if item.id in items]) for collection, batch in jobs]


def cap_refusals(report: BuildReport, share: float, rng: random.Random) -> None:
    """Keep a seeded sample of the refusal examples so that they are at most `share` of all examples."""
    if not 0 <= share <= 1:
        raise ConfigError(f"data.max_refusal_share is {share}; use a share between 0 and 1 (1 keeps every refusal)")
    refusals = [e for e in report.examples if e.meta.target == "refusal"]
    answers = len(report.examples) - len(refusals)
    allowed = len(refusals) if share >= 1 else int(share * answers / (1 - share))
    if len(refusals) <= allowed:
        return
    kept = {id(e) for e in rng.sample(refusals, allowed)}
    report.examples = [e for e in report.examples if e.meta.target != "refusal" or id(e) in kept]
    report.dropped_refusals = len(refusals) - allowed


def chunks_by_document(components: Components, collection: str) -> dict[str, list[StoredChunk]]:
    """Every chunk of the collection by document (a maintenance read: finds the oracle even if not retrieved)."""
    found: dict[str, list[StoredChunk]] = {}
    for chunk in components.store.iter_chunks(collection):
        found.setdefault(chunk.doc_id, []).append(chunk)
    for chunks in found.values():
        chunks.sort(key=lambda c: int(c.chunk_index))
    return found


def _example(
    item: Item,
    retrieved: list[Any],
    chunks_of: dict[str, list[StoredChunk]],
    allowed: frozenset[str],
    recipe: Recipe,
    rng: random.Random,
    report: BuildReport,
    collection: str,
) -> Example | None:
    data = recipe.data
    oracle: StoredChunk | None = None
    if item.answerable:
        assert item.doc_id is not None
        chunks = chunks_of.get(item.doc_id)
        if not chunks:
            report.exclude(item, "its document is not in the index")
            return None
        if not set(chunks[0].groups) <= allowed:
            report.exclude(item, "its document is readable beyond the allowed groups")
            return None
        oracle = _oracle(chunks, item.quotes)
        if oracle is None:
            report.exclude(item, "no single chunk holds all its quotes")
            return None
    distractors = []
    for chunk in retrieved:
        if chunk.doc_id == item.doc_id:
            continue
        if not set(chunk.groups) <= allowed:
            report.excluded_distractors += 1
            continue
        distractors.append(chunk)
    count = rng.randint(data.min_blocks, data.max_blocks)
    drop_oracle = oracle is not None and rng.random() < data.no_oracle_share
    shown: list[Any]
    if oracle is None or drop_oracle:
        shown, target, position = distractors[:count], MODEL_REFUSAL, None
    else:
        shown = distractors[: count - 1]
        position = oracle_position(data.oracle_position, _ranked_above(item, retrieved, distractors), len(shown), rng)
        shown.insert(position, oracle)
        target = render_answer(item.answer, item.quotes, position + 1)
    given = [*shown, *chunks_of[item.doc_id][:1]] if item.answerable and item.doc_id else shown
    for chunk in given:
        report.data_groups.update(chunk.groups)
    blocks = [ContextBlock(c.title, c.section, c.text) for c in shown]
    prompt, completion = render_training_example(item.question, blocks, target)
    meta = ExampleMeta(
        item.id, item.source, item.question, item.doc_id, None if position is None else position + 1, len(blocks)
    )
    return Example(item.id, prompt, completion, meta, _sources(collection, given, chunks_of))


def _sources(collection: str, chunks: list[Any], chunks_of: dict[str, list[StoredChunk]]) -> tuple[Source, ...]:
    """The documents of `chunks`, once each, with their groups and content hash (sorted: the same data writes the
    same bytes)."""
    groups = {chunk.doc_id: tuple(sorted(chunk.groups)) for chunk in chunks}
    hashes = {doc_id: stored[0].doc_hash for doc_id, stored in chunks_of.items() if stored}  # as indexed now
    return tuple(Source(collection, doc_id, groups[doc_id], hashes.get(doc_id)) for doc_id in sorted(groups))


ORACLE_POSITIONS = ("random", "retrieved")


def _check_oracle_rule(rule: str) -> None:
    if rule not in ORACLE_POSITIONS:
        raise ConfigError(f"data.oracle_position is {rule!r}; use one of: {', '.join(ORACLE_POSITIONS)}")


def oracle_position(rule: str, ranked_above: int | None, distractors: int, rng: random.Random) -> int:
    """Where the oracle goes among `distractors` shown distractors (0-based), by `data.oracle_position`;
    `ranked_above` counts the distractors the retriever ranked above the oracle's document (None: not retrieved)."""
    _check_oracle_rule(rule)
    if rule == "retrieved" and ranked_above is not None and ranked_above <= distractors:
        return ranked_above
    return rng.randint(0, distractors)


def _ranked_above(item: Item, retrieved: list[Any], distractors: list[Any]) -> int | None:
    """How many of the kept distractors the retriever ranked above the item's document; None if not retrieved."""
    ranked = [chunk.doc_id for chunk in retrieved]
    if item.doc_id not in ranked:
        return None
    above = set(ranked[: ranked.index(item.doc_id)])
    return sum(1 for chunk in distractors if chunk.doc_id in above)


def _oracle(chunks: list[StoredChunk], quotes: tuple[str, ...]) -> StoredChunk | None:
    wanted = [normalise_space(q).lower() for q in quotes]
    for chunk in chunks:
        text = normalise_space(chunk.text).lower()
        if all(q in text for q in wanted):
            return chunk
    return None


SPLITS = ("train", "validation")


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The example lines of a built file; a line that is not UTF-8 or not JSON is one error naming it."""
    lines: list[dict[str, Any]] = []
    for number, text in numbered_lines(path.read_bytes()):
        try:
            lines.append(record_of_line(text))
        except LineRefused as exc:
            raise ConfigError(f"{path}:{number}: {exc}; build again without --changed-only") from None
    return lines


def read_built_lines(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """The example lines built before in `folder`, by split, for a changed-only build."""
    found = {}
    for name in SPLITS:
        path = folder / f"{name}.jsonl"
        if not path.is_file():
            raise ConfigError(f"no {path} to keep lines from: run `assistant tune build-data` without --changed-only")
        found[name] = read_lines(path)
    return found


def render_lines(rows: list[dict[str, Any]]) -> bytes:
    """The JSONL bytes of example lines, one a line (`tune build-data` scrubs them before they are written)."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")


def render_examples(examples: list[Example]) -> bytes:
    return render_lines([e.to_json() for e in examples])


def write_examples(examples: list[Example], path: Path) -> str:
    """Write JSONL as rendered (not scrubbed); return the dataset hash (sha256 of the bytes, 16 hex digits)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = render_examples(examples)
    path.write_bytes(raw)
    return hashlib.sha256(raw).hexdigest()[:16]


BUILD_SUMMARY = "build-report.json"
BUILD_SUMMARY_VERSION = 1


@dataclass(frozen=True)
class BuildSummary:
    """`build-report.json` beside the built data: for people and CI logs. Training never trusts it: the adapter's
    record takes groups and hashes from the files it read (`tuning/provenance.py`)."""

    train: int
    validation: int
    refusal_targets: int
    by_source: dict[str, int]
    excluded: dict[str, int]  # reason -> items
    excluded_items: list[str]
    excluded_distractors: int
    dropped_refusals: int
    data_groups: list[str]
    dataset_hash: dict[str, str]  # split -> sha256 of its file (16 hex digits)
    version: int = BUILD_SUMMARY_VERSION

    @classmethod
    def of(
        cls, report: BuildReport, train: list[dict[str, Any]], validation: list[dict[str, Any]], hashes: dict[str, str]
    ) -> BuildSummary:
        """From the lines written (`train`, `validation`: built now, or kept from before by a changed-only build)."""
        rows = train + validation
        metas = [row.get("meta") or {} for row in rows]
        kept_groups = {
            g for line in report.kept_lines for source in line.get("sources") or [] for g in source["groups"]
        }
        return cls(
            train=len(train),
            validation=len(validation),
            refusal_targets=sum(meta.get("target") == "refusal" for meta in metas),
            by_source=dict(Counter(str(meta.get("source")) for meta in metas)),
            excluded=dict(report.excluded),
            excluded_items=list(report.excluded_items),
            excluded_distractors=report.excluded_distractors,
            dropped_refusals=report.dropped_refusals,
            data_groups=sorted(report.data_groups | kept_groups),
            dataset_hash=dict(hashes),
        )

    def write(self, folder: Path) -> Path:
        path = folder / BUILD_SUMMARY
        write_json(path, dataclasses.asdict(self))
        return path

    @classmethod
    def read(cls, folder: Path) -> BuildSummary:
        path = folder / BUILD_SUMMARY
        try:
            data, _ = read_json(path, reads=BUILD_SUMMARY_VERSION)
            return cls(**data)
        except FileNotFoundError:
            raise ConfigError(f"{path} is missing: run `assistant tune build-data` first") from None
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path}: not a build report ({exc}); run `assistant tune build-data` again") from exc
