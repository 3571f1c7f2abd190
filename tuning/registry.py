"""The adapter registry in `ASSISTANT_DATA_DIR/adapters/`: one folder per adapter (peft files + `adapter.json`),
and `promoted.json` naming the one the runtime serves, with the history that `rollback` walks back.

Promotion is refused unless the adapter's evaluation meets the configured gates and does not regress against
the adapter promoted now, and every document its training data names is in the index; the record's data groups
are then refreshed from those documents' groups there (`served_record`: they can only narrow). Reading records
and choosing what to serve is `assistant/adapters.py`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.adapters import (
    DATA,
    RECORD,
    RECORD_VERSION,
    AdapterRecord,
    PromotedState,
    adapters_dir,
    check_training_data,
    read_promoted,
    read_record,
    served_record,
    write_promoted,
    write_record,
)
from assistant.errors import ConfigError
from assistant.prompt import template_hash
from assistant.recipe import Recipe
from assistant.settings import Settings
from assistant.store import VectorStore
from evals.run_files import git_commit
from tuning.provenance import TrainingData

# Answer-quality gates an adapter must meet to be promoted (figures from `assistant tune eval`).
GATES: dict[str, float] = {
    "format_valid": 0.98,
    "cited": 0.90,
    "citation_precision": 0.80,
    "quotes_verbatim": 0.90,
    "correct_refusals": 0.80,
    "token_f1": 0.40,
}
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
REGRESSION_TOLERANCE = 0.02  # a metric may fall this much below the promoted adapter's before it counts


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def base_model_hash(base_dir: Path) -> str:
    """Hash of the base model's weight files (safetensors), so an adapter names the exact weights it was trained on."""
    files = sorted(Path(base_dir).glob("*.safetensors"))
    return hashlib.sha256("".join(file_hash(f) for f in files).encode()).hexdigest()[:16] if files else "unknown"


def register(
    settings: Settings,
    adapter_files: Path,
    recipe: Recipe,
    *,
    base_dir: Path,
    data: TrainingData,
    training: dict[str, Any],
    repo: Path,
    scan: dict[str, Any] | None = None,
) -> AdapterRecord:
    """Copy a trained adapter into the registry with its record and the exact data bytes it trained on (under
    `data/`, re-hashed by the runtime before serving); the record's hashes and data groups come from `data`, the
    files as training read them, never from a build report. Returns the record."""
    adapter_id = f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    target = adapters_dir(settings) / adapter_id
    (target / DATA).mkdir(parents=True)
    for name in ADAPTER_FILES:  # the tokenizer is the base model's: not copied
        shutil.copy2(adapter_files / name, target / name)
    for example_file in data.files:
        (target / DATA / example_file.name).write_bytes(example_file.raw)
    record = AdapterRecord(
        id=adapter_id,
        path=target,
        base_model=recipe.base_model,
        prompt_template_hash=template_hash(),
        data_groups=tuple(sorted(data.groups)),
        context_blocks=recipe.serve.context_blocks,
        version=RECORD_VERSION,
        data_files={f.name: f.sha256 for f in data.files},
        base_model_hash=base_model_hash(base_dir),
        dataset_hash=data.train.sha256[:16],
        git_commit=git_commit(repo),
        recipe=recipe.to_dict(),
        training=training,
        created=time.strftime("%Y-%m-%dT%H:%M:%S"),
        scan=scan or {},
        sources=tuple(data.source_documents()),
    )
    return write_record(record)


def register_copy(source: AdapterRecord, folder: Path, adapter_id: str, data: bytes, **changes: Any) -> AdapterRecord:
    """`source`'s weights registered again under `adapter_id` in the registry `folder`, with `data` (JSON lines) as
    its training data: a candidate that answers exactly as `source` does (the shadow benchmark's, the engine
    tests'). `changes` replace record fields (e.g. metrics, data_groups)."""
    target = folder / adapter_id
    (target / DATA).mkdir(parents=True)
    for name in ADAPTER_FILES:
        shutil.copy2(source.path / name, target / name)
    (target / DATA / "train.jsonl").write_bytes(data)
    record = dataclasses.replace(
        source,
        id=adapter_id,
        path=target,
        version=RECORD_VERSION,
        data_files={"train.jsonl": hashlib.sha256(data).hexdigest()},
        created=time.strftime("%Y-%m-%dT%H:%M:%S"),
        **{"rollout": (), "scan": {}, "sources": (), **changes},  # moved nowhere yet; its data is `data`
    )
    return write_record(record)


def set_metrics(record: AdapterRecord, metrics: dict[str, Any]) -> AdapterRecord:
    return write_record(dataclasses.replace(record, metrics=metrics))


def list_adapters(settings: Settings) -> list[AdapterRecord]:
    folder = adapters_dir(settings)
    if not folder.is_dir():
        return []
    return sorted((read_record(p) for p in folder.iterdir() if (p / RECORD).is_file()), key=lambda r: r.id)


@dataclass(frozen=True)
class PromotionCheck:
    failures: list[str]  # one line each: a gate missed or a regression
    served: AdapterRecord | None = None  # the candidate with the data groups its sources have in the index now

    @property
    def ok(self) -> bool:
        return not self.failures


def promotion_check(candidate: AdapterRecord, current: AdapterRecord | None, store: VectorStore) -> PromotionCheck:
    failures = []
    served = None
    metrics = candidate.metrics.get("handbook", {})
    if not metrics:
        return PromotionCheck([f"{candidate.id} has no evaluation: run `assistant tune eval {candidate.id}` first"])
    if candidate.prompt_template_hash != template_hash():
        failures.append(f"prompt template {candidate.prompt_template_hash} differs from the running {template_hash()}")
    try:
        check_training_data(candidate)  # the runtime would refuse to serve it
        served = served_record(candidate, store)  # and so it would if a source were gone from the index
    except ConfigError as exc:
        failures.append(str(exc))
    for name, floor in GATES.items():
        value = float(metrics.get(name, 0.0))
        if value < floor:
            failures.append(f"{name} {value:.3f} is below the gate {floor:.2f}")
    if current is not None and current.id != candidate.id:
        before = current.metrics.get("handbook", {})
        for name in GATES:
            if name in before and float(metrics.get(name, 0.0)) < float(before[name]) - REGRESSION_TOLERANCE:
                failures.append(
                    f"{name} {float(metrics[name]):.3f} regresses against {current.id} ({before[name]:.3f})"
                )
    return PromotionCheck(failures, served)


def promote(settings: Settings, adapter_id: str, store: VectorStore) -> AdapterRecord:
    """Serve `adapter_id` from now on; its training sources are looked up in `store` (the index it answers from).
    Returns its record, data groups refreshed from those sources (who it is served to)."""
    folder = adapters_dir(settings) / adapter_id
    candidate = read_record(folder)
    state = read_promoted(settings)
    current = read_record(adapters_dir(settings) / state.current) if state.current else None
    check = promotion_check(candidate, current, store)
    if not check.ok or check.served is None:
        raise ConfigError(f"not promoting {adapter_id}: " + "; ".join(check.failures))
    if check.served.data_groups != candidate.data_groups:  # the cache said less than the sources do now
        candidate = write_record(check.served)
    history = (*state.history, state.current) if state.current else state.history
    write_promoted(settings, PromotedState(adapter_id, history))
    return candidate


def rollback(settings: Settings) -> str | None:
    """Serve the previously promoted adapter again (None: no adapter promoted any more, the shipped one serves)."""
    state = read_promoted(settings)
    if not state.current:
        raise ConfigError("no adapter is promoted: nothing to roll back")
    previous = state.history[-1] if state.history else None
    write_promoted(settings, PromotedState(previous, state.history[:-1]))
    return previous
