"""Train the evidence scorer (`assistant/evidence.py`): a cross-encoder over (question, sentence) pairs, initialised
from the bundled MiniLM encoder with a new one-logit head, trained as a LoRA adapter (peft) on the encoder plus the
head with sentence-transformers' `CrossEncoderTrainer` and `BinaryCrossEntropyLoss`, on CPU.

    python -m tuning.evidence_train --recipe tuning/recipes/evidence-cpu.yaml [--set train.epochs=2] [--out DIR]

1. Builds the pairs (`tuning/evidence_data.py`: ingests the recipe's corpora, retrieves as a principal of the
   allowed groups, leaves out held-out questions) into `ASSISTANT_DATA_DIR/tuning/<recipe>/{train,validation}.jsonl`
   (`--reuse-data` trains on the files already there).
2. Trains on the bytes of `train.jsonl` as read (their sha256 goes into the record).
3. Fits Platt scaling (two floats) on the validation split's logits, so that scores are probabilities, and measures
   the validation split: accuracy, precision and recall at 0.5, AUC, log loss, and per question whether the best
   sentence's score says "answerable" (optimistic there: an answerable question's quote is among its pairs).
4. Writes the adapter (`adapter_config.json`, `adapter_model.safetensors`: ~2 MB, not the 90 MB encoder) and
   `evidence.json`, the record (`assistant.evidence.EvidenceRecord`), to `--out` or
   `ASSISTANT_DATA_DIR/evidence/<recipe>-<time>/`; then loads the folder as the runtime does and checks that it
   reproduces the validation logits.

LoRA through peft directly (`get_peft_model` on the cross-encoder's Hugging Face model): sentence-transformers'
own `CrossEncoder.add_adapter` goes through transformers' peft integration, which with the installed
transformers 5.25 requires peft >= 0.22 (0.21.2 is installed) and refuses.

Recipes are pydantic dataclasses checked in as YAML (`tuning/recipes/evidence-cpu.yaml`), validated and reported as
`assistant/recipe.py` does (a wrong key or type names its `section: field`). Retraining after reviewers accepted
items from the review queue is the same command: they are appended to the items file the recipe reads.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import field
from pathlib import Path
from typing import Any, cast

from pydantic.dataclasses import dataclass

from assistant.digests import file_sha256
from assistant.embedder import resolve_model_path
from assistant.errors import AssistantError, ConfigError
from assistant.evidence import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    EVIDENCE_RECORD,
    EVIDENCE_RECORD_VERSION,
    FULL_WEIGHTS,
    Calibration,
    EvidenceRecord,
    EvidenceScorer,
    load_base_cross_encoder,
    read_evidence_record,
    scorer_weights,
    weights_hash,
)
from assistant.json_file import write_json
from assistant.progress import NO_PROGRESS, Progress
from assistant.recipe import STRICT_KEYS, ItemSource, load_checked_yaml
from assistant.settings import BUNDLED_EMBEDDER, Settings
from evals.run_files import git_commit
from tuning.evidence_data import (
    ANSWER,
    SENTENCE,
    TRAIN,
    VALIDATION,
    Pair,
    PairFile,
    PairReport,
    read_pairs,
    split_pairs,
    write_pairs,
)


@dataclass(config=STRICT_KEYS)
class EvidenceDataRecipe:
    """What the pairs are made of (`tuning/evidence_data.py`)."""

    sources: list[ItemSource] = field(default_factory=list)  # curated items over a corpus, as in the adapter's recipe
    scifact: str | None = None  # a BEIR SciFact directory: its train claims' rationale sentences are positives
    scifact_claims: int = 0  # SciFact train claims used (a seeded sample); 0: all of them
    retrieved: int = 5  # chunks retrieved per question whose sentences are hard negatives
    max_negatives: int = 8  # negatives per question at most (half from the item's own chunks when it has some)
    allowed_groups: list[str] = field(default_factory=lambda: ["everyone"])  # only these groups' documents give text
    # More held-out evaluation sets (JSONL, a "question" per line, relative to the repository; a missing file is
    # skipped): no pair may repeat or paraphrase their questions, as for `evals.held_out`'s own sets.
    held_out_extra: list[str] = field(default_factory=list)
    answer_pairs: bool = True  # (question, answer line) pairs of the curated items too: the answer verifier's data
    validation_share: float = 0.1  # by a hash of the question's words: all pairs of a question on one side
    seed: int = 13


@dataclass(config=STRICT_KEYS)
class EvidenceLoraRecipe:
    r: int = 8  # rank of the update matrices
    alpha: int = 16  # scaling (alpha / r)
    dropout: float = 0.1
    target_modules: list[str] = field(default_factory=lambda: ["query", "key", "value", "dense"])  # BERT's linears


@dataclass(config=STRICT_KEYS)
class EvidenceTrainRecipe:
    epochs: float = 1.0  # passes over the training pairs (max_steps wins when set)
    max_steps: int = -1  # -1: from epochs
    batch_size: int = 32  # pairs per optimiser step
    learning_rate: float = 5e-4  # LoRA and the new head
    lr_scheduler: str = "linear"
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_length: int = 128  # tokens of question + sentence; longer pairs are truncated (training and serving)
    pos_weight: float | None = None  # weight of the positive class in the loss; None: 1
    logging_steps: int = 20
    seed: int = 13


@dataclass(config=STRICT_KEYS)
class EvidenceRecipe:
    name: str = "evidence-cpu"
    base_model: str = BUNDLED_EMBEDDER  # an embedder.model value: the bundled MiniLM or a local model folder
    data: EvidenceDataRecipe = field(default_factory=EvidenceDataRecipe)
    lora: EvidenceLoraRecipe | None = field(default_factory=EvidenceLoraRecipe)  # None: train every weight
    train: EvidenceTrainRecipe = field(default_factory=EvidenceTrainRecipe)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_evidence_recipe(path: Path, overrides: Sequence[str] = ()) -> EvidenceRecipe:
    """A recipe from YAML, then `section.field=value` overrides (values parsed as YAML), as `assistant.recipe`."""
    return load_checked_yaml(
        path, overrides, EvidenceRecipe, "tuning/recipes/evidence-cpu.yaml", "tuning/evidence_train.py"
    )


# -- calibration and metrics ---------------------------------------------------------------------------------------
def fit_platt(logits: Sequence[float], labels: Sequence[int]) -> Calibration:
    """Platt scaling by Newton's method on the log loss, with Platt's smoothed targets (a separable validation
    split keeps a finite slope). One class only, or no pairs: the identity (scale 1, bias 0)."""
    import numpy as np

    x = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    positives = float(y.sum())
    negatives = float(len(y) - positives)
    if positives == 0 or negatives == 0:
        return Calibration()
    target = np.where(y > 0, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    scale, bias = 1.0, 0.0
    for _ in range(100):
        p = 1 / (1 + np.exp(-(scale * x + bias)))
        weight = np.maximum(p * (1 - p), 1e-12)
        gradient = np.array([np.sum((p - target) * x), np.sum(p - target)])
        hessian = np.array(
            [[np.sum(weight * x * x) + 1e-9, np.sum(weight * x)], [np.sum(weight * x), np.sum(weight) + 1e-9]]
        )
        step = np.linalg.solve(hessian, gradient)
        scale, bias = scale - float(step[0]), bias - float(step[1])
        if float(np.max(np.abs(step))) < 1e-10:
            break
    return Calibration(scale, bias)


def auc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties counted half); None with one class only."""
    import numpy as np

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels) > 0
    positives, negatives = int(y.sum()), int((~y).sum())
    if not positives or not negatives:
        return None
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)  # 1-based rank of each distinct value's last occurrence
    ranks = (upper - (counts - 1) / 2.0)[inverse]  # tied values share their average rank
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def binary_metrics(probabilities: Sequence[float], labels: Sequence[int], threshold: float = 0.5) -> dict[str, Any]:
    predicted = [p >= threshold for p in probabilities]
    actual = [label > 0 for label in labels]
    true_pos = sum(p and a for p, a in zip(predicted, actual, strict=True))
    false_pos = sum(p and not a for p, a in zip(predicted, actual, strict=True))
    false_neg = sum(a and not p for p, a in zip(predicted, actual, strict=True))
    correct = sum(p == a for p, a in zip(predicted, actual, strict=True))
    eps = 1e-12
    log_loss = -sum(
        math.log(max(p, eps)) if a else math.log(max(1 - p, eps)) for p, a in zip(probabilities, actual, strict=True)
    )
    n = len(actual)
    found = auc(probabilities, labels)
    return {
        "pairs": n,
        "positives": sum(actual),
        "accuracy": round(correct / n, 4) if n else None,
        "precision": round(true_pos / (true_pos + false_pos), 4) if true_pos + false_pos else None,
        "recall": round(true_pos / (true_pos + false_neg), 4) if true_pos + false_neg else None,
        "auc": round(found, 4) if found is not None else None,
        "log_loss": round(log_loss / n, 4) if n else None,
    }


def question_metrics(pairs: Sequence[Pair], probabilities: Sequence[float]) -> dict[str, Any]:
    """Per question: the best pair's score against whether the question has a positive (is answerable)."""
    best: dict[str, float] = defaultdict(float)
    answerable: dict[str, int] = defaultdict(int)
    for pair, probability in zip(pairs, probabilities, strict=True):
        best[pair.question] = max(best[pair.question], probability)
        answerable[pair.question] |= pair.label
    questions = list(best)
    metrics = binary_metrics([best[q] for q in questions], [answerable[q] for q in questions])
    return {"questions": metrics.pop("pairs"), "answerable": metrics.pop("positives"), **metrics}


# -- training ------------------------------------------------------------------------------------------------------
def train_scorer(
    recipe: EvidenceRecipe,
    data_dir: Path,
    out: Path,
    *,
    repo: Path,
    device: str = "cpu",
    build: PairReport | None = None,
    progress: Progress = NO_PROGRESS,
) -> EvidenceRecord:
    """Train on `data_dir/{train,validation}.jsonl`, calibrate and measure on the validation split, and write the
    scorer to `out` (its record last). `build`: the report of the pairs built for this run, kept in the record."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, TaskType, get_peft_model
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
    from transformers import set_seed

    from tuning.train import _progress_callback

    train_file, validation_file = read_pairs(data_dir / TRAIN), read_pairs(data_dir / VALIDATION)
    if not train_file.pairs:
        raise ConfigError(f"{train_file.path} holds no pairs: build them first (drop --reuse-data)")
    _check_out(out)
    cfg = recipe.train
    base_dir = resolve_model_path(recipe.base_model)
    set_seed(cfg.seed)  # the new head's initial weights, LoRA's, dropout and the batch order
    model = load_base_cross_encoder(recipe.base_model, cfg.max_length, device)
    encoder = model[0]
    peft_model = None  # `lora: null`: every weight is trained
    if recipe.lora is not None:
        lora = LoraConfig(
            task_type=TaskType.SEQ_CLS,  # also trains and saves the new head ("classifier") whole
            r=recipe.lora.r,
            lora_alpha=recipe.lora.alpha,
            lora_dropout=recipe.lora.dropout,
            target_modules=list(recipe.lora.target_modules),
        )
        peft_model = get_peft_model(cast("torch.nn.Module", encoder.model), lora)
        encoder.model = peft_model
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    args = CrossEncoderTrainingArguments(
        output_dir=str(data_dir / "trainer"),
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # a float below 1 is a share of the steps
        weight_decay=cfg.weight_decay,
        logging_steps=cfg.logging_steps,
        seed=cfg.seed,
        data_seed=cfg.seed,
        use_cpu=device == "cpu",
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        disable_tqdm=True,  # progress goes through the caller's Progress
        dataloader_num_workers=0,
    )
    rows = {
        "question": [p.question for p in train_file.pairs],
        "sentence": [p.sentence for p in train_file.pairs],
        "label": [float(p.label) for p in train_file.pairs],
    }
    pos_weight = torch.tensor(cfg.pos_weight) if cfg.pos_weight is not None else None
    trainer = CrossEncoderTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict(rows),
        loss=BinaryCrossEntropyLoss(model, pos_weight=pos_weight),
        callbacks=[_progress_callback(progress)],
    )
    started = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - started
    shutil.rmtree(data_dir / "trainer", ignore_errors=True)

    started = time.perf_counter()
    validation = [p for p in validation_file.pairs if p.kind == SENTENCE]
    logits = _logits(model, validation)
    labels = [p.label for p in validation]
    calibration = fit_platt(logits, labels)
    calibrated = [calibration.probability(x) for x in logits]
    raw = Calibration().probability
    metrics: dict[str, Any] = {
        "validation": binary_metrics(calibrated, labels),
        "validation_uncalibrated": binary_metrics([raw(x) for x in logits], labels),
        "validation_questions": question_metrics(validation, calibrated),
    }
    answers = [p for p in validation_file.pairs if p.kind == ANSWER]  # the answer verifier's own calibration
    answer_calibration = None
    if 0 < sum(p.label for p in answers) < len(answers):  # both classes, or no calibration (and no verifier)
        answer_logits = _logits(model, answers)
        answer_labels = [p.label for p in answers]
        answer_calibration = fit_platt(answer_logits, answer_labels)
        metrics["answer_validation"] = {
            **binary_metrics([answer_calibration.probability(x) for x in answer_logits], answer_labels),
            "top_line_answers": top_answers(answers, answer_logits),
        }
    metrics["validation_top_sentence_answers"] = top_answers(validation, logits)
    metrics["validation_seconds"] = round(time.perf_counter() - started, 1)

    out.mkdir(parents=True, exist_ok=True)
    for name in (EVIDENCE_RECORD, ADAPTER_CONFIG, ADAPTER_WEIGHTS, FULL_WEIGHTS):  # a scorer replaced: its record
        (out / name).unlink(missing_ok=True)  # goes first and comes back last: no half-written folder is a scorer
    if peft_model is not None:
        peft_model.peft_config["default"].base_model_name_or_path = recipe.base_model  # not the venv's absolute path
        peft_model.save_pretrained(str(out), save_embedding_layers=False)  # the base's embeddings are unchanged
    else:
        model.save(str(out))  # every weight trained: the whole cross-encoder (~90 MB), tokenizer included
    (out / "README.md").unlink(missing_ok=True)  # the libraries' model card template: nothing of ours
    files = (train_file, validation_file)
    record = EvidenceRecord(
        id=f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}",
        path=out,
        base_model=recipe.base_model,
        base_model_hash=weights_hash(base_dir),
        weights_sha256=file_sha256(scorer_weights(out)),
        max_length=cfg.max_length,
        calibration=calibration,
        answer_calibration=answer_calibration,
        data_groups=tuple(sorted({g for f in files for p in f.pairs for g in p.groups})),
        data_files={f.path.name: f.sha256 for f in files},
        data=_data_summary(train_file, validation_file, build),
        recipe=recipe.to_dict(),
        training={
            "seconds": round(seconds, 1),
            "steps": int(trainer.state.global_step),
            "train_loss": round(float(output.training_loss), 4) if output.training_loss is not None else None,
            "trainable_parameters": trainable,
            "device": device,
            "torch_threads": torch.get_num_threads(),
        },
        metrics=metrics,
        version=EVIDENCE_RECORD_VERSION,
        git_commit=git_commit(repo),
        created=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    written = write_evidence_record(record)
    _check_reloads(out, validation[:16], logits[:16], device)
    return written


def write_evidence_record(record: EvidenceRecord) -> EvidenceRecord:
    """Write `evidence.json` into the record's folder (replacing the file whole) and return it as read back."""
    write_json(record.path / EVIDENCE_RECORD, record.to_json())
    return read_evidence_record(record.path)


def _check_out(out: Path) -> None:
    """`out` is new, empty, or a scorer folder (whose files are replaced): never someone's other folder."""
    if out.exists() and any(out.iterdir()) and not (out / EVIDENCE_RECORD).is_file():
        raise ConfigError(f"{out} is a folder that holds no evidence scorer: give a new or empty folder")


def _logits(model: Any, pairs: Sequence[Pair], batch_size: int = 64) -> list[float]:
    if not pairs:
        return []
    import numpy as np
    import torch

    raw = model.predict(
        [(p.question, p.sentence) for p in pairs],
        batch_size=batch_size,
        activation_fn=torch.nn.Identity(),
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return [float(x) for x in np.asarray(raw, dtype=np.float64).reshape(-1)]


def _check_reloads(out: Path, pairs: Sequence[Pair], expected: Sequence[float], device: str) -> None:
    """The folder, loaded as the runtime loads it, gives the logits just measured."""
    scorer = EvidenceScorer.load(out, device=device)
    for pair, logit in zip(pairs, expected, strict=True):
        found = scorer.logits(pair.question, [pair.sentence])[0]
        if abs(found - logit) > 1e-3:
            raise ConfigError(f"{out}: the saved scorer gives logit {found:.4f} where training measured {logit:.4f}")


def top_answers(pairs: Sequence[Pair], scores: Sequence[float]) -> float:
    """Share of the questions with a positive pair whose best-scored pair is a positive one."""
    top: dict[str, tuple[float, int]] = {}
    for pair, score in zip(pairs, scores, strict=True):
        if pair.question not in top or score > top[pair.question][0]:
            top[pair.question] = (score, pair.label)
    answerable = {p.question for p in pairs if p.label}
    return round(sum(top[q][1] for q in answerable) / len(answerable), 4) if answerable else 0.0


def _data_summary(train: PairFile, validation: PairFile, build: PairReport | None) -> dict[str, Any]:
    def split(pairs: Sequence[Pair]) -> dict[str, Any]:
        by_source: dict[str, int] = defaultdict(int)
        by_kind: dict[str, int] = defaultdict(int)
        for pair in pairs:
            by_source[pair.source] += 1
            by_kind[pair.kind] += 1
        return {
            "pairs": len(pairs),
            "positives": sum(p.label for p in pairs),
            "questions": len({p.question for p in pairs}),
            "by_source": dict(by_source),
            "by_kind": dict(by_kind),
        }

    summary: dict[str, Any] = {"train": split(train.pairs), "validation": split(validation.pairs)}
    if build is not None:
        summary["excluded"] = dict(build.excluded)
        summary["excluded_items"] = list(build.excluded_items)
        summary["excluded_chunks"] = build.excluded_chunks
        summary["held_out_extra"] = list(build.held_out_sets)
    return summary


# -- command line --------------------------------------------------------------------------------------------------
def work_dir(settings: Settings, recipe: EvidenceRecipe) -> Path:
    return settings.data_dir / "tuning" / recipe.name


def evidence_dir(settings: Settings) -> Path:
    """Where trained scorers go when no --out is given: one folder each."""
    return settings.data_dir / "evidence"


def main(argv: Sequence[str] | None = None) -> None:
    from rich.console import Console

    from assistant.cli_progress import terminal_progress
    from assistant.components import open_components
    from assistant.settings import load_settings
    from tuning.evidence_data import build_pairs

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, required=True, help="A recipe YAML (tuning/recipes/evidence-cpu.yaml).")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="section.field=value")
    parser.add_argument("--out", type=Path, help="Folder for the scorer (default: ASSISTANT_DATA_DIR/evidence/<id>).")
    parser.add_argument("--reuse-data", action="store_true", help="Train on the pairs already built.")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    try:
        settings = load_settings()
        recipe = load_evidence_recipe(args.recipe, args.overrides)
        folder = work_dir(settings, recipe)
        report = None
        if not args.reuse_data:
            with open_components(settings) as components, terminal_progress(console) as progress:
                report = build_pairs(components, recipe.data, settings.repo_dir, progress)
            train, validation = split_pairs(report.pairs, recipe.data.validation_share)
            write_pairs(train, folder / TRAIN)
            write_pairs(validation, folder / VALIDATION)
            print(
                f"{len(train)} train and {len(validation)} validation pairs ({report.questions} questions) in {folder}"
            )
            for reason, count in report.excluded.items():
                print(f"excluded {count} item(s): {reason}")
            if report.excluded_chunks:
                print(f"{report.excluded_chunks} retrieved chunk(s) outside {recipe.data.allowed_groups} left out")
        out = args.out or evidence_dir(settings) / f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        with terminal_progress(console) as progress:
            record = train_scorer(
                recipe, folder, out, repo=settings.repo_dir, device=args.device, build=report, progress=progress
            )
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"evidence scorer {record.id} in {out}")
    print(json.dumps({"training": record.training, "metrics": record.metrics}, indent=1))


if __name__ == "__main__":
    main()
