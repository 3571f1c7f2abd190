"""Which LoRA adapter the runtime serves, and to whom.

An adapter is a folder with peft's files and `adapter.json`, its record: the resolved recipe, the base model and
a hash of its weights, the training data's hash, the prompt template's hash, the git commit, the groups its
training text came from, how it is served (context blocks) and its evaluation metrics. `tuning/registry.py`
writes records and promotes adapters; this module only reads them.

Serving rules, each failing closed:
- an adapter trained with another prompt template is refused (it would be served prompts it never saw);
- an adapter for another base model is refused;
- an adapter is served only to principals who hold every group its training text came from (it may have
  memorised some of that text).
Resolution when `generator.adapter` is not set and `generator.use_promoted_adapter` is on: the adapter promoted in
`ASSISTANT_DATA_DIR/adapters/`, else the one shipped with the package (`assistant/shipped_adapter/`) when
`generator.model` is the base it was trained on, else none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.access import Principal
from assistant.errors import ConfigError
from assistant.prompt import template_hash
from assistant.settings import Settings

RECORD = "adapter.json"
PROMOTED = "promoted.json"
SHIPPED = Path(__file__).resolve().parent / "shipped_adapter"


@dataclass(frozen=True)
class AdapterRecord:
    id: str
    path: Path
    base_model: str
    prompt_template_hash: str
    data_groups: tuple[str, ...]
    context_blocks: int
    metrics: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def servable_to(self, principal: Principal) -> bool:
        return set(self.data_groups) <= principal.groups


def read_record(folder: Path) -> AdapterRecord:
    path = folder / RECORD
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return AdapterRecord(
            id=str(data["id"]),
            path=folder,
            base_model=str(data["base_model"]),
            prompt_template_hash=str(data["prompt_template_hash"]),
            data_groups=tuple(data["data_groups"]),
            context_blocks=int(data.get("serve", {}).get("context_blocks", 3)),
            metrics=dict(data.get("metrics") or {}),
            raw=data,
        )
    except FileNotFoundError:
        raise ConfigError(
            f"{folder} has no {RECORD}: not an adapter of this project (train one with `tune train`)"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not an adapter record ({exc}); retrain or restore the file") from exc


def adapters_dir(settings: Settings) -> Path:
    return settings.data_dir / "adapters"


def promoted_id(settings: Settings) -> str | None:
    path = adapters_dir(settings) / PROMOTED
    if not path.is_file():
        return None
    current = json.loads(path.read_text(encoding="utf-8")).get("current")
    return str(current) if current else None


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
