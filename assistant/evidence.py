"""The evidence scorer: a small cross-encoder that says how likely a sentence of a retrieved block is to answer a
question, as a calibrated probability.

It is the bundled MiniLM encoder (`bundled:all-MiniLM-L6-v2`, the embedder's weights) with a one-logit
classification head, trained by the project as a LoRA adapter on the encoder plus the head
(`tuning/evidence_train.py`, recipe `tuning/recipes/evidence-cpu.yaml`): its folder holds peft's
`adapter_config.json` and `adapter_model.safetensors` (a few MB) and `evidence.json`, its record. The logit is
mapped to a probability by Platt scaling fitted on the validation split (`Calibration`), so a score of 0.7 means
that about 7 in 10 such sentences answered their question there.

What it is for: the best score over the blocks' sentences says whether the blocks answer the question at all
(`answerability`), and `rank` orders the sentences an answer may quote (the decoding grammar's quote candidates,
`assistant.quote_constraint.quote_candidates`, built on `house_format.split_sentences`).

Loading never downloads: the base weights are resolved as the embedder resolves them
(`assistant.embedder.resolve_model_path`) and must hash to the record's `base_model_hash` (the adapter is a
difference against those exact weights); the adapter file must hash to the record's `weights_sha256`.
The shipped scorer lives in `assistant/shipped_evidence/`; a scorer trained into the data directory lives in
`ASSISTANT_DATA_DIR/evidence/<id>/`. The record is read here and written by `tuning/evidence_train.py`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from assistant.access import Principal
from assistant.digests import file_sha256
from assistant.embedder import resolve_model_path
from assistant.errors import ConfigError
from assistant.house_format import fold
from assistant.json_file import read_json
from assistant.model_loading import LOADING
from assistant.quote_constraint import quote_candidates
from assistant.retriever import RetrievedChunk
from assistant.settings import EvidenceSettings

if TYPE_CHECKING:
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder

SHIPPED_EVIDENCE = Path(__file__).parent / "shipped_evidence"
EVIDENCE_RECORD = "evidence.json"
EVIDENCE_RECORD_VERSION = 1
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
FULL_WEIGHTS = "model.safetensors"  # a scorer trained whole (recipe `lora: null`): the complete cross-encoder
TRAIN_COMMAND = "python -m tuning.evidence_train --recipe tuning/recipes/evidence-cpu.yaml"
DEFAULT_BATCH_SIZE = 32  # pairs per forward pass when scoring


@dataclass(frozen=True)
class Calibration:
    """Platt scaling: probability = sigmoid(scale * logit + bias), fitted on the validation split."""

    scale: float = 1.0
    bias: float = 0.0

    def to_json(self) -> dict[str, float]:
        return {"scale": self.scale, "bias": self.bias}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        return cls(float(data["scale"]), float(data["bias"]))

    def probability(self, logit: float) -> float:
        z = self.scale * logit + self.bias
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)


@dataclass(frozen=True)
class EvidenceRecord:
    """`evidence.json`: read by `read_evidence_record`, written by `tuning.evidence_train`."""

    id: str
    path: Path  # the scorer's folder (not stored)
    base_model: str  # an embedder.model value: `bundled:all-MiniLM-L6-v2` or a local folder
    base_model_hash: str  # of the base weights the adapter was trained against (`weights_hash`)
    weights_sha256: str  # of its weights file (`scorer_weights`)
    max_length: int  # tokens of (question, sentence) the encoder sees; longer pairs are truncated
    calibration: Calibration
    data_groups: tuple[str, ...]  # groups of every document whose text the pairs hold
    data_files: dict[str, str] = field(default_factory=dict)  # training file name -> sha256 of the bytes trained on
    data: dict[str, Any] = field(default_factory=dict)  # pairs, positives, questions per split; exclusions
    recipe: dict[str, Any] = field(default_factory=dict)  # the resolved recipe, as trained
    training: dict[str, Any] = field(default_factory=dict)  # seconds, steps, loss, device
    metrics: dict[str, Any] = field(default_factory=dict)  # validation split: accuracy, auc, precision, recall ...
    git_commit: str = ""
    created: str = ""
    version: int = EVIDENCE_RECORD_VERSION  # stored as record_version
    answer_calibration: Calibration | None = None  # logit of (question, answer line) -> P(it answers); None: none

    def servable_to(self, principal: Principal) -> bool:
        """The scorer was trained on text of `data_groups`' documents: served only to those who read them all."""
        return principal.holds_all(self.data_groups)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "record_version": self.version,
            "base_model": self.base_model,
            "base_model_hash": self.base_model_hash,
            "weights_sha256": self.weights_sha256,
            "max_length": self.max_length,
            "calibration": self.calibration.to_json(),
            "answer_calibration": self.answer_calibration.to_json() if self.answer_calibration else None,
            "data_groups": list(self.data_groups),
            "data_files": self.data_files,
            "data": self.data,
            "recipe": self.recipe,
            "training": self.training,
            "metrics": self.metrics,
            "git_commit": self.git_commit,
            "created": self.created,
        }


def read_evidence_record(folder: Path) -> EvidenceRecord:
    path = folder / EVIDENCE_RECORD
    try:
        data, version = read_json(path, reads=EVIDENCE_RECORD_VERSION, version_key="record_version")
        answers = data.get("answer_calibration")
        return EvidenceRecord(
            id=str(data["id"]),
            path=folder,
            base_model=str(data["base_model"]),
            base_model_hash=str(data["base_model_hash"]),
            weights_sha256=str(data["weights_sha256"]),
            max_length=int(data["max_length"]),
            calibration=Calibration.from_json(data["calibration"]),
            answer_calibration=Calibration.from_json(answers) if answers is not None else None,
            data_groups=tuple(str(g) for g in data["data_groups"]),
            data_files={str(k): str(v) for k, v in (data.get("data_files") or {}).items()},
            data=dict(data.get("data") or {}),
            recipe=dict(data.get("recipe") or {}),
            training=dict(data.get("training") or {}),
            metrics=dict(data.get("metrics") or {}),
            git_commit=str(data.get("git_commit", "")),
            created=str(data.get("created", "")),
            version=version,
        )
    except FileNotFoundError:
        raise ConfigError(
            f"{folder} holds no evidence scorer (no {EVIDENCE_RECORD}): train one with `{TRAIN_COMMAND} --out {folder}`"
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: not an evidence scorer record ({exc}); retrain it or restore the file") from exc


def scorer_weights(folder: Path) -> Path:
    """A scorer folder's weights: the LoRA adapter's when it holds one, else the whole model's."""
    return folder / (ADAPTER_WEIGHTS if (folder / ADAPTER_CONFIG).is_file() else FULL_WEIGHTS)


def weights_hash(model_dir: Path) -> str:
    """Hash of a model folder's safetensors files (the same figure `tuning.registry.base_model_hash` gives)."""
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        return "unknown"
    return hashlib.sha256("".join(file_sha256(f)[:16] for f in files).encode()).hexdigest()[:16]


def block_sentences(block: str) -> list[str]:
    """The sentences of a block an answer may quote: the decoding grammar's quote candidates (every sentence of
    every paragraph by `house_format.split_sentences`, and every line that stands alone, 3 to 60 words)."""
    return [candidate[2:-1] for candidate in quote_candidates(block)]  # each is ` "sentence"`


def line_context(block: str) -> dict[str, str]:
    """What a line of `block` means only with the line it depends on: a table row -> its table's header row; a
    list item -> the lead-in ending in ":" that introduces its list. Keyed by the stripped line."""
    context: dict[str, str] = {}
    header, lead_in = "", ""
    lines = [line.strip() for line in block.splitlines()]
    for n, line in enumerate(lines):
        if not line:
            continue  # a blank line between a lead-in and its list, or between rows, breaks neither
        if line.startswith("|"):
            lead_in = ""
            separator = set(line) <= set("|-: ")
            if not header and not separator and n + 1 < len(lines) and set(lines[n + 1]) <= set("|-: "):
                header = line  # a header row is the one a |---| separator follows
            elif header and not separator:
                context[line] = header
            continue
        header = ""
        if _LIST_ITEM.match(line):
            if lead_in:
                context[line] = lead_in
            continue
        lead_in = line if line.endswith(":") else ""
    return context


def sentence_contexts(block: str, sentences: Sequence[str]) -> list[str]:
    """For each quotable sentence of `block`, the context of the line that holds it ("" where none)."""
    context = line_context(block)
    if not context:
        return [""] * len(sentences)
    return [next((c for line, c in context.items() if sentence in line), "") for sentence in sentences]


_LIST_ITEM = re.compile(r"^(?:[-*+]|\d+[.)])\s")


@dataclass(frozen=True)
class ScoredSentence:
    block: int  # 1-based, as an answer cites it: `[n]`
    sentence: str
    score: float  # calibrated probability that the sentence answers the question


def rank_sentences(
    score: Callable[[str, Sequence[str]], list[float]],
    question: str,
    blocks: Sequence[str],
    *,
    order: Callable[[str, Sequence[tuple[str, str]]], list[float]] | None = None,
    headings: Sequence[str] = (),
) -> list[ScoredSentence]:
    """Every quotable sentence of every block scored by `score`, best first (ties: earlier block first). With
    `order`, the ranking is by `order`'s figure for each (heading of its block, sentence) instead, the scores
    staying the calibrated probabilities (`headings`: one per block; none given: "")."""
    sentences_of = [block_sentences(text) for text in blocks]  # split once: the ranking's context reuses them
    found = [(number, sentence) for number, sentences in enumerate(sentences_of, 1) for sentence in sentences]
    unique = list(dict.fromkeys(sentence for _, sentence in found))  # a sentence in two blocks is scored once
    scores = dict(zip(unique, score(question, unique), strict=True))
    keys = scores
    if order is not None:
        heading_of: dict[str, str] = {}
        for number, (text, sentences) in enumerate(zip(blocks, sentences_of, strict=True), 1):
            heading = headings[number - 1] if number <= len(headings) else ""
            for sentence, context in zip(sentences, sentence_contexts(text, sentences), strict=True):
                heading_of.setdefault(sentence, " ".join(part for part in (heading, context) if part))
        keys = dict(zip(unique, order(question, [(heading_of[s], s) for s in unique]), strict=True))
    ranked = [ScoredSentence(number, sentence, scores[sentence]) for number, sentence in found]
    return sorted(ranked, key=lambda s: (-keys[s.sentence], s.block))


class SentenceScorer(Protocol):
    """What the answer pipeline needs of an evidence scorer (the cross-encoder, or `similarity_evidence`)."""

    def rank(self, question: str, blocks: Sequence[str], headings: Sequence[str] = ()) -> list[ScoredSentence]:
        """Every quotable sentence of `blocks`, best first; `headings` (one per block: title and section) is
        context a scorer may read with each sentence."""
        ...

    def servable_to(self, principal: Principal) -> bool: ...

    def answer_score(self, question: str, answer_line: str) -> float | None:
        """How likely the answer line (citations removed) answers the question; None: this scorer cannot say."""
        ...


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """Loading the base as a cross-encoder reports its new head and the model conversion: expected, not news."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    before = hf_logging.get_verbosity()
    st_logger = logging.getLogger("sentence_transformers")
    st_level = st_logger.level
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    st_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hf_logging.set_verbosity(before)
        st_logger.setLevel(st_level)


def load_base_cross_encoder(base_model: str, max_length: int, device: str = "cpu") -> CrossEncoder:
    """The base model as a cross-encoder with a new one-logit head (training and serving build it the same way);
    local files only."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers.cross_encoder import CrossEncoder

    base = resolve_model_path(base_model)
    with _quiet_loading():
        model: CrossEncoder = CrossEncoder(
            str(base), num_labels=1, max_length=max_length, device=device, local_files_only=True
        )
    return model


class EvidenceScorer:
    """Calibrated (question, sentence) scores from a trained scorer folder. Build it with `EvidenceScorer.load`."""

    def __init__(self, record: EvidenceRecord, model: CrossEncoder, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.record = record
        self.model = model
        self.batch_size = batch_size

    @classmethod
    def load(
        cls, folder: Path = SHIPPED_EVIDENCE, *, device: str = "cpu", batch_size: int = DEFAULT_BATCH_SIZE
    ) -> EvidenceScorer:
        """The scorer in `folder` (default: the one shipped in the package), checked against its record."""
        record = read_evidence_record(folder)
        weights = scorer_weights(folder)
        if not weights.is_file():
            raise ConfigError(
                f"evidence scorer {record.id}: {weights} (or a LoRA's {ADAPTER_CONFIG}) is missing; "
                f"restore them or retrain with `{TRAIN_COMMAND}`"
            )
        if file_sha256(weights) != record.weights_sha256:
            raise ConfigError(
                f"evidence scorer {record.id}: {weights} does not match its record's sha256; "
                f"restore the file or retrain with `{TRAIN_COMMAND}`"
            )
        if weights.name == ADAPTER_WEIGHTS:  # a LoRA is a difference to the base weights: they must be the same
            cls._check_base(record)
        with LOADING:
            return cls._load(folder, record, device, batch_size)

    @staticmethod
    def _check_base(record: EvidenceRecord) -> None:
        base = resolve_model_path(record.base_model)
        found = weights_hash(base)
        if found != record.base_model_hash:
            raise ConfigError(
                f"evidence scorer {record.id} was trained on {record.base_model} weights {record.base_model_hash}, "
                f"but {base} holds {found}: retrain it with `{TRAIN_COMMAND}`"
            )

    @classmethod
    def _load(cls, folder: Path, record: EvidenceRecord, device: str, batch_size: int) -> EvidenceScorer:
        if not (folder / ADAPTER_CONFIG).is_file():  # trained whole: the folder is the model
            with _quiet_loading():
                model = load_base_cross_encoder(str(folder), record.max_length, device)
            model.eval()
            return cls(record, model, batch_size)
        from peft import PeftModel

        model = load_base_cross_encoder(record.base_model, record.max_length, device)
        with _quiet_loading():
            encoder = model[0]  # sentence-transformers' Transformer module; `.model` is the Hugging Face model
            adapted = PeftModel.from_pretrained(cast("torch.nn.Module", encoder.model), str(folder))
            encoder.model = adapted.merge_and_unload()  # plain BERT again: 2-3x faster on CPU than unmerged LoRA
        model.eval()
        return cls(record, model, batch_size)

    def logits(self, question: str, sentences: Sequence[str]) -> list[float]:
        """The model's raw logits (before calibration), one per sentence."""
        if not sentences:
            return []
        import numpy as np
        import torch

        raw = self.model.predict(
            [(question, sentence) for sentence in sentences],
            batch_size=self.batch_size,
            activation_fn=torch.nn.Identity(),
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [float(x) for x in np.asarray(raw, dtype=np.float64).reshape(-1)]

    def score(self, question: str, sentences: Sequence[str]) -> list[float]:
        """Calibrated probabilities that each sentence answers `question`, in the order given."""
        calibration = self.record.calibration
        return [calibration.probability(logit) for logit in self.logits(question, sentences)]

    def rank(self, question: str, blocks: Sequence[str], headings: Sequence[str] = ()) -> list[ScoredSentence]:
        """Every quotable sentence of every block with its score, best first (ties: earlier block first); the
        cross-encoder reads the sentence alone, as it was trained (`headings` unused)."""
        return rank_sentences(self.score, question, blocks)

    def servable_to(self, principal: Principal) -> bool:
        return self.record.servable_to(principal)

    def answer_score(self, question: str, answer_line: str) -> float | None:
        calibration = self.record.answer_calibration
        if calibration is None or not answer_line.strip():
            return None
        return calibration.probability(self.logits(question, [answer_line])[0])

    def answerability(self, question: str, blocks: Sequence[str]) -> float:
        """The best sentence's score: how likely the blocks answer the question at all (0.0 with no sentence)."""
        ranked = self.rank(question, blocks)
        return ranked[0].score if ranked else 0.0


@dataclass(frozen=True)
class EvidenceSelection:
    """What the scorer decided for one question: the blocks the model sees (best first), the sentences it may
    quote, and whether any sentence answers the question at all."""

    blocks: list[RetrievedChunk]  # shown, in the order of their best-ranked sentence
    preferred_quotes: dict[int, set[str]]  # shown block number (1-based) -> the sentences it may quote
    best: float  # the highest calibrated score of any sentence (0.0: no sentence)
    scores: dict[str, float]  # sentence (`house_format.fold`ed) -> its score, in the scorer's ranking order
    min_score: float
    shown_ranking: tuple[tuple[int, str], ...] = ()  # the shown blocks' sentences, best first: (block, as written)

    @property
    def top(self) -> tuple[int, str] | None:
        """The best-ranked sentence of a shown block (its block number, the sentence as written)."""
        return self.shown_ranking[0] if self.shown_ranking else None

    def best_sentences(self, count: int) -> list[str]:
        """The `count` best-ranked sentences (folded), best first: where the answer should be, in order."""
        return list(self.scores)[:count]

    def ranks_first(self, sentence: str) -> bool:
        """Whether a quoted sentence is (a part of) the sentence the scorer ranks first."""
        return bool(self.scores) and fold(sentence) in next(iter(self.scores))

    def focused_text(self, block: int, text: str) -> str:
        """Block `block`'s text cut to the sentences it may quote first (in their order), one per line."""
        wanted = self.preferred_quotes.get(block, set())
        return "\n".join(s for s in dict.fromkeys(block_sentences(text)) if s in wanted)

    @property
    def answerable(self) -> bool:
        return self.best >= self.min_score

    @property
    def first_score(self) -> float | None:
        """The probability of the sentence ranked first (the ranking reads more than the probability, so `best` may
        be another sentence's); None: no sentence."""
        return next(iter(self.scores.values()), None)

    @property
    def first_accepted(self) -> bool:
        """The sentence ranked first reaches `min_score`."""
        first = self.first_score
        return first is not None and first >= self.min_score

    def score_of(self, sentence: str) -> float:
        """The score of a quoted sentence (case and spacing aside; a part of a scored sentence takes its score)."""
        wanted = fold(sentence)
        exact = self.scores.get(wanted)
        if exact is not None:
            return exact
        return max((score for text, score in self.scores.items() if wanted in text), default=0.0)

    @classmethod
    def of(
        cls,
        ranked: Sequence[ScoredSentence],
        chunks: Sequence[RetrievedChunk],
        shown: Callable[[list[RetrievedChunk]], list[RetrievedChunk]],
        settings: EvidenceSettings,
    ) -> EvidenceSelection:
        """`ranked` scores the sentences of `chunks` (block n = chunks[n - 1]); `shown` trims the reordered blocks
        to those the model sees (an adapter's context_blocks)."""
        place: dict[int, int] = {}
        for position, scored in enumerate(ranked):
            place.setdefault(scored.block, position)  # ranked best first: a block's first is its best
        # A block with no quotable sentence goes after those with one; ties keep retrieval order (a stable sort).
        order = sorted(range(1, len(chunks) + 1), key=lambda n: place.get(n, len(ranked)))
        blocks = shown([chunks[n - 1] for n in order])
        new_number = {order[i]: i + 1 for i in range(len(blocks))}
        preferred: dict[int, set[str]] = {}
        for scored in [s for s in ranked if s.block in new_number][: settings.quote_top]:
            preferred.setdefault(new_number[scored.block], set()).add(scored.sentence)
        scores: dict[str, float] = {}
        for scored in ranked:
            scores.setdefault(fold(scored.sentence), scored.score)
        shown_ranking = tuple((new_number[s.block], s.sentence) for s in ranked if s.block in new_number)
        return cls(blocks, preferred, max(scores.values(), default=0.0), scores, settings.min_score, shown_ranking)
