"""A tuning recipe: small documented dataclasses, checked in as YAML (tuning/recipes/) and overridable from the
command line (`--set train.learning_rate=3e-4`). It lives in the core, below its consumers: `tune` trains from it,
`review train` applies its allow-list, and the resolved recipe is saved next to every adapter.

Every field's comment is its documentation. The classes are pydantic dataclasses: a YAML file or `--set` is
validated as settings are, and an unknown key or a value of the wrong type is an error naming its path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from assistant.adapters import DEFAULT_CONTEXT_BLOCKS
from assistant.errors import ConfigError
from assistant.yaml_file import read_yaml

STRICT_KEYS = ConfigDict(extra="forbid")
T = TypeVar("T")


@dataclass(config=STRICT_KEYS)
class ItemSource:
    """Curated items over one corpus."""

    items: str  # the items JSONL, relative to the repository root
    corpus: str  # the corpus folder (with access.yaml) the items were written over
    collection: str  # the collection that corpus is ingested into for building the data


@dataclass(config=STRICT_KEYS)
class DataRecipe:
    """What the training examples are made of (RAFT-style: the oracle block among retrieved distractors)."""

    sources: list[ItemSource] = field(default_factory=list)
    scifact: str | None = None  # a BEIR SciFact directory: its train split adds out-of-domain examples
    scifact_examples: int = 160  # SciFact train claims used (answerable and not, in their natural mix)
    no_oracle_share: float = 0.2  # share of answerable items whose oracle block is dropped: target = refusal
    # At most this share of all examples target the refusal (a seeded sample of them is kept): a small model
    # trained on too many refusals refuses questions its blocks answer. 1.0 keeps every one.
    max_refusal_share: float = 1.0
    # Where the oracle block goes among the shown blocks. random: any position (RAFT: no position shortcut);
    # retrieved: where the retriever ranked the oracle's document when it is among the shown ones (else random),
    # so that the examples look like the runtime's blocks, where the answer's document is most often block 1.
    oracle_position: str = "random"
    min_blocks: int = 2  # context blocks per example, drawn between min and max (the runtime shows max)
    max_blocks: int = 3
    allowed_groups: list[str] = field(default_factory=lambda: ["everyone"])  # only these groups' documents give text
    validation_share: float = 0.1  # by content hash: the same example always lands in the same split
    seed: int = 13


@dataclass(config=STRICT_KEYS)
class LoraRecipe:
    r: int = 16  # rank of the update matrices
    alpha: int = 32  # scaling (alpha / r)
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )


@dataclass(config=STRICT_KEYS)
class TrainRecipe:
    epochs: float = 1.0  # passes over the training examples (max_steps wins when set)
    max_steps: int = -1  # -1: from epochs
    batch_size: int = 4  # examples per forward pass
    gradient_accumulation: int = 2  # forward passes per optimiser step
    learning_rate: float = 4e-4
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    max_length: int = 1024  # tokens; a longer example is reported by `tune check` and skipped, never cut
    group_by_length: bool = True  # batches of similar length: less padding
    gradient_checkpointing: bool = False  # recompute activations: less memory, ~30% more time
    load_in_4bit: bool = False  # QLoRA: 4-bit NF4 base weights, bf16 compute (CUDA only)
    bf16: bool = False  # bf16 compute (CUDA); CPU trains in fp32
    eval_steps: int = 20  # validation loss every N optimiser steps
    save_steps: int = 10  # checkpoint every N steps (resume from the last one)
    logging_steps: int = 5
    seed: int = 13


@dataclass(config=STRICT_KEYS)
class ServeRecipe:
    context_blocks: int = DEFAULT_CONTEXT_BLOCKS  # retrieved blocks shown to the adapter at answer time


@dataclass(config=STRICT_KEYS)
class ScrubRecipe:
    """What example text may hold before it trains (`tuning/scrub.py`): an action for each kind of value found,
    `redact` (a typed placeholder such as <EMAIL_ADDRESS_1>), `drop` (the example is left out), `fail` (left out,
    and `tune train` refuses the data) or `allow` (kept as it is)."""

    personal: str = "redact"  # personal data (presidio's recognizers: e-mail, phone, IBAN, card, SSN, IP, names)
    secrets: str = "fail"  # secrets (detect-secrets' plugins: cloud keys, private keys, JWTs, passwords in URLs...)
    # Per entity type, over the two defaults, e.g. {PHONE_NUMBER: allow, HEX_HIGH_ENTROPY_STRING: drop};
    # an unknown type is refused with the list of those the installed scanners know.
    actions: dict[str, str] = field(default_factory=dict)
    # Values the company wants taught whatever their type (the helpdesk's public extension, say), one a line (#
    # starts a comment); relative to the repository root. None: no value is allowed by name.
    allow_list: str | None = None
    ner: bool = True  # person names, where a spaCy NER model is installed (pattern recognizers run regardless)


@dataclass(config=STRICT_KEYS)
class Recipe:
    name: str = "handbook-cpu"
    base_model: str = "bundled:gemma-3-270m"  # a generator.model value
    data: DataRecipe = field(default_factory=DataRecipe)
    lora: LoraRecipe = field(default_factory=LoraRecipe)
    train: TrainRecipe = field(default_factory=TrainRecipe)
    serve: ServeRecipe = field(default_factory=ServeRecipe)
    scrub: ScrubRecipe = field(default_factory=ScrubRecipe)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_recipe(path: Path, overrides: Sequence[str] = ()) -> Recipe:
    """A recipe from YAML, then `section.field=value` overrides (values parsed as YAML)."""
    return load_checked_yaml(path, overrides, Recipe, "tuning/recipes/", "assistant/recipe.py")


def load_checked_yaml(path: Path, overrides: Sequence[str], kind: type[T], examples: str, documented_in: str) -> T:
    """YAML of pydantic dataclasses `kind` (a recipe), with `section.field=value` overrides; every problem is one
    ConfigError naming `section: field` and where the fields are documented."""
    data = read_yaml(path, f"recipe {path} does not exist; see {examples}")
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep:
            raise ConfigError(f"--set {override!r}: write section.field=value")
        node = data
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    try:
        return TypeAdapter(kind).validate_python(data)
    except ValidationError as exc:
        problems = (_problem(error, documented_in) for error in exc.errors())
        raise ConfigError(f"{path}: " + "; ".join(problems)) from None


_EXPECTED = {"int": "expected int", "float": "expected a number", "bool": "expected bool", "string": "expected str"}


def _problem(error: Any, documented_in: str) -> str:
    """One pydantic error as `section: field: what`, in the words of the recipe's documentation."""
    where = ": ".join(str(part) for part in error["loc"])
    kind = str(error["type"])
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return f"{where}: unknown key; see the fields documented in {documented_in}"
    if kind == "missing_argument" or kind == "missing":
        return f"{where}: missing (required)"
    if kind.startswith("dataclass_") or kind in ("model_type", "dict_type"):
        return f"{where or 'recipe'}: expected a mapping"
    expected = next((text for prefix, text in _EXPECTED.items() if kind.startswith(prefix)), None)
    return f"{where}: {expected}, got {error.get('input')!r}" if expected else f"{where}: {error['msg']}"
