"""Which LoRA adapter the runtime serves, and to whom.

An adapter is a folder with peft's files and `adapter.json`, its record: the resolved recipe, the base model and
a hash of its weights, the training data's hash, the prompt template's hash, the git commit, the groups its
training text came from, how it is served (context blocks) and its evaluation metrics. From record version 2 the
folder also holds `data/`, the exact training files it was trained on, and the record their sha256
(`data_files`); training derived the data groups from those files' examples (`tuning/provenance.py`).
The record and `promoted.json` are read and written here; `tuning/registry.py` creates records and promotes.

Serving rules, each failing closed:
- an adapter trained with another prompt template is refused (it would be served prompts it never saw);
- an adapter for another base model is refused;
- an adapter whose data files are missing or do not match the record's hashes is refused (the record would not
  describe what it was trained on); a record of version 1 names no data files and is served only as the adapter
  shipped in the package (`assistant/shipped_adapter/`, reviewed with the code: its training data was built with
  `allowed_groups: [everyone]`, the recipe in its record); elsewhere it must be retrained;
- an adapter is served only to principals who hold every group its training text came from (it may have
  memorised some of that text). Those groups are not taken from the record: `served_record` reads the documents
  each example line names (its `sources`) from the hashed data files and looks them up in the vector store now,
  at promotion, when the runtime first serves the adapter, and after every sync (`Components.recheck_adapter`).
  The groups served under are every source's groups in the store and as its line recorded them, together with
  the record's `data_groups`: the record, a cache, can narrow who is served, never widen it. A curated line
  (`"sources": [], "curated": true`, hand-written text or a question and the refusal) names no document and adds
  no group. A source no longer in the store fails closed: the adapter is refused with one line naming it. The
  shipped version-1 record names no data: its `data_groups` (everyone), reviewed with the code, stand.
Resolution when `generator.adapter` is not set and `generator.use_promoted_adapter` is on: the adapter promoted in
`ASSISTANT_DATA_DIR/adapters/`, else the one shipped with the package (`assistant/shipped_adapter/`) when
`generator.model` is the base it was trained on, else none.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.access import Principal
from assistant.errors import ConfigError
from assistant.json_file import read_json, write_json
from assistant.prompt import template_hash
from assistant.settings import Settings
from assistant.store.base import VectorStore

RECORD = "adapter.json"
RECORD_VERSION = 2  # 2: the record names its training files (`data_files`), kept in the adapter's DATA folder
DATA = "data"
PROMOTED = "promoted.json"
PROMOTED_VERSION = 1
SHIPPED = Path(__file__).resolve().parent / "shipped_adapter"
DEFAULT_CONTEXT_BLOCKS = 3  # retrieved blocks shown to an adapter whose record does not say (recipe default too)


@dataclass(frozen=True)
class AdapterRecord:
    """`adapter.json`: read by `read_record`, written by `write_record` (the registry creates records)."""

    id: str
    path: Path  # the adapter's folder (not stored)
    base_model: str
    prompt_template_hash: str
    data_groups: tuple[str, ...]
    context_blocks: int = DEFAULT_CONTEXT_BLOCKS  # stored as serve.context_blocks
    metrics: dict[str, Any] = field(default_factory=dict)
    version: int = 1  # stored as record_version; absent in version-1 records
    data_files: dict[str, str] = field(default_factory=dict)  # file name in DATA -> sha256 of its bytes
    base_model_hash: str = "unknown"
    dataset_hash: str = ""
    git_commit: str = ""
    recipe: dict[str, Any] = field(default_factory=dict)  # the resolved recipe, as trained
    training: dict[str, Any] = field(default_factory=dict)  # loss, steps, seconds, device
    created: str = ""
    # Its rollout, oldest first: each move (to shadow, canary, promoted, back) with who, when, why and the evidence.
    rollout: tuple[dict[str, Any], ...] = ()
    # The scan report of each training file it trained on (`tuning/scrub.py`): counts, scanners, policy; no values.
    scan: dict[str, Any] = field(default_factory=dict)
    # The documents its examples show: collection, doc_id, content hash as built, examples (`tuning/superseded.py`).
    sources: tuple[dict[str, Any], ...] = ()

    def servable_to(self, principal: Principal) -> bool:
        return principal.holds_all(self.data_groups)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "record_version": self.version,
            "base_model": self.base_model,
            "base_model_hash": self.base_model_hash,
            "dataset_hash": self.dataset_hash,
            "data_files": self.data_files,
            "prompt_template_hash": self.prompt_template_hash,
            "git_commit": self.git_commit,
            "data_groups": list(self.data_groups),
            "serve": {"context_blocks": self.context_blocks},
            "recipe": self.recipe,
            "training": self.training,
            "metrics": self.metrics,
            "created": self.created,
            "rollout": list(self.rollout),
            "scan": self.scan,
            "sources": list(self.sources),
        }


def read_record(folder: Path) -> AdapterRecord:
    path = folder / RECORD
    try:
        data, version = read_json(path, reads=RECORD_VERSION, version_key="record_version")
        return AdapterRecord(
            id=str(data["id"]),
            path=folder,
            base_model=str(data["base_model"]),
            prompt_template_hash=str(data["prompt_template_hash"]),
            data_groups=tuple(str(g) for g in data["data_groups"]),
            context_blocks=int((data.get("serve") or {}).get("context_blocks", DEFAULT_CONTEXT_BLOCKS)),
            metrics=dict(data.get("metrics") or {}),
            version=version,
            data_files={str(k): str(v) for k, v in (data.get("data_files") or {}).items()},
            base_model_hash=str(data.get("base_model_hash", "unknown")),
            dataset_hash=str(data.get("dataset_hash", "")),
            git_commit=str(data.get("git_commit", "")),
            recipe=dict(data.get("recipe") or {}),
            training=dict(data.get("training") or {}),
            created=str(data.get("created", "")),
            rollout=tuple(dict(move) for move in data.get("rollout") or ()),
            scan=dict(data.get("scan") or {}),
            sources=tuple(dict(source) for source in data.get("sources") or ()),
        )
    except FileNotFoundError:
        raise ConfigError(
            f"{folder} has no {RECORD}: not an adapter of this project (train one with `tune train`)"
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: not an adapter record ({exc}); retrain or restore the file") from exc


def write_record(record: AdapterRecord) -> AdapterRecord:
    """Write `record` into its folder (replacing the file whole) and return it as read back."""
    write_json(record.path / RECORD, record.to_json())
    return read_record(record.path)


def adapters_dir(settings: Settings) -> Path:
    return settings.data_dir / "adapters"


@dataclass(frozen=True)
class PromotedState:
    """`promoted.json`: the adapter served now and the ones promoted before it (what `rollback` walks back)."""

    current: str | None = None
    history: tuple[str, ...] = ()
    version: int = PROMOTED_VERSION

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "current": self.current, "history": list(self.history)}


def read_promoted(settings: Settings) -> PromotedState:
    path = adapters_dir(settings) / PROMOTED
    if not path.is_file():
        return PromotedState()
    try:
        data, _ = read_json(path, reads=PROMOTED_VERSION)
        current = data.get("current")
        return PromotedState(str(current) if current else None, tuple(str(a) for a in data.get("history") or ()))
    except (ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: not a promotion record ({exc}); restore it or promote an adapter again") from exc


def write_promoted(settings: Settings, state: PromotedState) -> None:
    write_json(adapters_dir(settings) / PROMOTED, state.to_json())


def promoted_id(settings: Settings) -> str | None:
    return read_promoted(settings).current


def resolve_adapter(settings: Settings) -> AdapterRecord | None:
    """The adapter to serve, checked against the running prompt template and base model; None: the base model."""
    generator = settings.generator
    if generator.adapter is not None:
        folder: Path | None = generator.adapter
    elif not generator.use_promoted_adapter:
        return None
    else:
        current = promoted_id(settings)
        if current is not None:
            folder = adapters_dir(settings) / current
        elif (SHIPPED / RECORD).is_file():
            shipped = read_record(SHIPPED)
            # The shipped adapter is a default, not a requirement: another base model simply runs without it.
            folder = SHIPPED if shipped.base_model == generator.model else None
        else:
            folder = None
    if folder is None:
        return None
    record = read_record(folder)
    check_servable(record, generator.model)
    return record


def check_servable(record: AdapterRecord, base_model: str) -> None:
    if record.prompt_template_hash != template_hash():
        raise ConfigError(
            f"adapter {record.id} was trained with prompt template {record.prompt_template_hash}, but "
            f"assistant/prompt.py renders {template_hash()}: retrain it (`assistant tune train`) or roll back"
        )
    if record.base_model != base_model:
        raise ConfigError(
            f"adapter {record.id} was trained on {record.base_model}, but generator.model is {base_model}: "
            "set generator.model back, or use another adapter"
        )
    check_training_data(record)


def check_training_data(record: AdapterRecord) -> None:
    """The record describes the data the adapter was trained on: each file it names is in its DATA folder with the
    recorded hash. A version-1 record (no files named) is accepted only as the shipped adapter."""
    if record.version < 2:
        if record.path.resolve() == SHIPPED:
            return
        raise ConfigError(
            f"adapter {record.id} has a version-{record.version} record, which does not name the data it was "
            "trained on: retrain it with `assistant tune train`, or roll back"
        )
    if not record.data_files:
        raise ConfigError(f"adapter {record.id}: its record names no training data; retrain it or roll back")
    for name, digest in record.data_files.items():
        _checked_data_file(record, name, digest)


def _checked_data_file(record: AdapterRecord, name: str, digest: str) -> bytes:
    """The file's bytes, once they match the record's hash."""
    path = record.path / DATA / name
    if Path(name).name != name or not path.is_file():
        raise ConfigError(
            f"adapter {record.id}: its training data {path} is missing; restore it, retrain, or roll back"
        )
    raw = path.read_bytes()
    found = hashlib.sha256(raw).hexdigest()
    if found != digest:
        raise ConfigError(
            f"adapter {record.id}: {path} has sha256 {found[:16]}, not the record's {digest[:16]}: the record does "
            "not describe what the adapter was trained on; retrain it, restore the file, or roll back"
        )
    return raw


@dataclass(frozen=True)
class TrainingSource:
    """A document whose text the adapter's training examples show, as the example lines name it."""

    collection: str
    doc_id: str
    groups: frozenset[str]  # its groups when the lines were built (every line naming it, together)

    @property
    def name(self) -> str:
        return f"{self.collection}:{self.doc_id}"


def training_sources(record: AdapterRecord) -> list[TrainingSource]:
    """Every document the adapter's data files name, once each, read from bytes that match the record's hashes.
    A curated line names none; a line that is neither refuses the adapter (training refuses such lines)."""
    if not record.data_files:
        check_training_data(record)  # the line saying why there is nothing to read (the shipped record: nothing)
        return []
    found: dict[tuple[str, str], set[str]] = {}
    for name, digest in sorted(record.data_files.items()):
        raw = _checked_data_file(record, name, digest)
        for number, line in enumerate(raw.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                for collection, doc_id, groups in _line_sources(line):
                    found.setdefault((collection, doc_id), set()).update(groups)
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError too
                raise ConfigError(
                    f"adapter {record.id}: {record.path / DATA / name}:{number}: {exc}: not a line training accepts; "
                    "retrain it or roll back"
                ) from None
    return [TrainingSource(c, d, frozenset(g)) for (c, d), g in sorted(found.items())]


def _line_sources(line: bytes) -> list[tuple[str, str, list[str]]]:
    """(collection, doc id, groups when built) of each document an example line names (the format of
    `tuning/provenance.py`)."""
    example = json.loads(line.decode("utf-8"))
    sources = example.get("sources") if isinstance(example, dict) else None
    if not isinstance(sources, list):
        raise ValueError("it names no 'sources'")
    if not sources and example.get("curated") is not True:
        raise ValueError("its 'sources' is empty but it is not marked curated")
    named = []
    for source in sources:
        groups = source.get("groups", []) if isinstance(source, dict) else None
        if (
            not isinstance(source, dict)
            or not isinstance(source.get("collection"), str)
            or not isinstance(source.get("doc_id"), str)
            or not isinstance(groups, list)
            or not all(isinstance(g, str) for g in groups)
        ):
            raise ValueError("'sources' must be a list of {collection, doc_id, groups} objects")
        named.append((source["collection"], source["doc_id"], groups))
    return named


def indexed_groups(store: VectorStore, collection: str, doc_ids: set[str]) -> dict[str, frozenset[str]]:
    """The groups each of `doc_ids` carries in the store now; a document the store does not hold is absent.
    One pass over the collection's chunks: the store has no lookup of a document's groups."""
    if not store.has_collection(collection):
        return {}
    found: dict[str, set[str]] = {}
    for chunk in store.iter_chunks(collection):
        if chunk.doc_id in doc_ids:
            found.setdefault(chunk.doc_id, set()).update(chunk.groups)
    return {doc_id: frozenset(groups) for doc_id, groups in found.items()}


def source_groups(record: AdapterRecord, store: VectorStore) -> frozenset[str]:
    """The groups of the adapter's training text by the training rule (`tuning/provenance.py`: each source's
    groups now and when its line was built, all together), with "now" read from the store, not from the record.
    A source the store no longer holds, or holds for nobody, refuses the adapter naming it."""
    sources = training_sources(record)
    groups: set[str] = set()
    for collection in sorted({s.collection for s in sources}):
        named = [s for s in sources if s.collection == collection]
        now = indexed_groups(store, collection, {s.doc_id for s in named})
        for source in named:
            if not now.get(source.doc_id):
                raise ConfigError(
                    f"adapter {record.id} is not served: its training source {source.name} is not in the index "
                    "(deleted, or trained against another index); ingest it again, retrain, or roll back"
                )
            groups |= now[source.doc_id] | source.groups
    return frozenset(groups)


def served_record(record: AdapterRecord, store: VectorStore) -> AdapterRecord:
    """`record` with the data groups it is served under: its sources' groups in the store now and the record's
    own, together. A principal must hold them all, so each side can only narrow who is served: a hand-edited
    record wider than its sources changes nothing, a source regrouped to fewer readers narrows the audience.
    The shipped version-1 record names no data files: its groups stand (reviewed with the code)."""
    if record.version < 2:
        return record
    truth = source_groups(record, store)
    if truth <= set(record.data_groups):
        return record
    return dataclasses.replace(record, data_groups=tuple(sorted(truth | set(record.data_groups))))


def narrowed(record: AdapterRecord, served: AdapterRecord) -> str | None:
    """The line to log when `served` needs more groups than its record lists; None when it does not."""
    if set(served.data_groups) == set(record.data_groups):
        return None
    return (
        f"adapter {record.id}: its record lists data groups [{', '.join(record.data_groups)}], fewer than its "
        "training sources have in the index now (a hand-edited record or a regrouped source): served only to "
        f"principals holding all of [{', '.join(served.data_groups)}]"
    )
