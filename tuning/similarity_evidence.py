"""`assistant tune similarity-evidence`: fit the zero-shot evidence scorer (`assistant/similarity_evidence.py`).

Reads the (question, sentence) pairs `assistant tune evidence` builds (built here first when missing: the
same recipe and data, never a held-out question), embeds them with the configured embedder, and fits one Platt
calibration on the training questions: a question's best cosine -> whether some sentence answers it. Reports, on
the validation split: pair AUC, the share of answerable questions whose best sentence answers them, and the
question-level accuracy at 0.5. A second calibration, on the (question, answer line) pairs, is the answer verifier
(`answer_calibration`): a line's cosine -> whether it answers the question; its validation AUC, precision and
recall at 0.5 are reported too. Seconds on a CPU.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.components import Components
from assistant.evidence import Calibration
from assistant.similarity_evidence import SimilarityRecord, cosines, write_similarity_record
from evals.run_files import git_commit
from tuning.evidence_data import (
    ANSWER,
    SENTENCE,
    TRAIN,
    VALIDATION,
    Pair,
    build_pairs,
    read_pairs,
    split_pairs,
    write_pairs,
)
from tuning.evidence_train import (
    EvidenceRecipe,
    auc,
    binary_metrics,
    fit_platt,
    question_metrics,
    top_answers,
    work_dir,
)


def ensure_pairs(components: Components, recipe: EvidenceRecipe) -> Path:
    folder = work_dir(components.settings, recipe)
    built = (folder / TRAIN).is_file() and (folder / VALIDATION).is_file()
    if built and recipe.data.answer_pairs != any(p.kind == ANSWER for p in read_pairs(folder / TRAIN).pairs):
        built = False  # built before answer pairs existed, or with them when the recipe now says no: build again
    if not built:
        report = build_pairs(components, recipe.data, components.settings.repo_dir)
        train, validation = split_pairs(report.pairs, recipe.data.validation_share)
        write_pairs(train, folder / TRAIN)
        write_pairs(validation, folder / VALIDATION)
    return folder


def pair_cosines(components: Components, pairs: Sequence[Pair]) -> list[float]:
    by_question: dict[str, list[int]] = defaultdict(list)
    for index, pair in enumerate(pairs):
        by_question[pair.question].append(index)
    found = [0.0] * len(pairs)
    for question, indexes in by_question.items():
        for index, cosine in zip(
            indexes, cosines(components.embedder, question, [pairs[i].sentence for i in indexes]), strict=True
        ):
            found[index] = cosine
    return found


def best_per_question(pairs: Sequence[Pair], scores: Sequence[float]) -> tuple[list[float], list[int]]:
    best: dict[str, float] = {}
    answerable: dict[str, int] = defaultdict(int)
    for pair, score in zip(pairs, scores, strict=True):
        best[pair.question] = max(best.get(pair.question, -1.0), score)
        answerable[pair.question] |= pair.label
    return [best[q] for q in best], [answerable[q] for q in best]


def fit(components: Components, recipe: EvidenceRecipe, out: Path) -> SimilarityRecord:
    started = time.perf_counter()
    folder = ensure_pairs(components, recipe)
    train_file, validation_file = read_pairs(folder / TRAIN), read_pairs(folder / VALIDATION)
    train, validation = _of_kind(train_file.pairs, SENTENCE), _of_kind(validation_file.pairs, SENTENCE)
    train_scores, valid_scores = pair_cosines(components, train), pair_cosines(components, validation)
    calibration = fit_platt(*best_per_question(train, train_scores))
    probabilities = [calibration.probability(c) for c in valid_scores]
    metrics: dict[str, Any] = {
        "validation_pairs": {
            **binary_metrics(probabilities, [p.label for p in validation]),
            "auc": auc(valid_scores, [p.label for p in validation]),
        },
        "validation_questions": question_metrics(validation, probabilities),
        "validation_top_sentence_answers": top_answers(validation, valid_scores),
        "train_questions": len(set(p.question for p in train)),
    }
    answer_calibration, answer_metrics = _fit_answers(
        components, _of_kind(train_file.pairs, ANSWER), _of_kind(validation_file.pairs, ANSWER)
    )
    metrics |= answer_metrics
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    record = SimilarityRecord(
        embedder=components.settings.embedder.model,
        calibration=calibration,
        answer_calibration=answer_calibration,
        metrics=metrics,
        data={TRAIN: train_file.sha256, VALIDATION: validation_file.sha256},
        created=time.strftime("%Y-%m-%dT%H:%M:%S"),
        git_commit=git_commit(components.settings.repo_dir),
    )
    return write_similarity_record(out, record)


def _of_kind(pairs: Sequence[Pair], kind: str) -> list[Pair]:
    return [p for p in pairs if p.kind == kind]


def _fit_answers(
    components: Components, train: Sequence[Pair], validation: Sequence[Pair]
) -> tuple[Calibration | None, dict[str, Any]]:
    """The answer verifier: each (question, answer line) pair's cosine -> whether the line answers the question.
    No answer pairs (`data.answer_pairs: false`): no verifier."""
    if not train:
        return None, {}
    calibration = fit_platt(pair_cosines(components, train), [p.label for p in train])
    valid_scores = pair_cosines(components, validation)
    labels = [p.label for p in validation]
    return calibration, {
        "answer_validation_pairs": {
            **binary_metrics([calibration.probability(c) for c in valid_scores], labels),
            "auc": auc(valid_scores, labels),
        },
        "answer_validation_top_line_answers": top_answers(validation, valid_scores),
        "answer_train_pairs": len(train),
    }
