"""Moving an adapter through its rollout: candidate -> shadow -> canary -> promoted, and back at once.

Each move is checked here (the CLI and the quality page both call these functions) and recorded in the adapter's
own record (`adapter.json`, `rollout`): from, to, who, when, why and the evidence it was made on. What the
runtime does in each stage is `assistant/rollout.py`.

- **shadow** needs a servable adapter (prompt template, base model, training data, its sources in the index);
  its answers are never shown, so no quality gate applies yet.
- **canary** serves real users: the offline gates of `tune promote` must pass first.
- **promote** applies the offline gates, and with `--evidence` (or `rollout.require_evidence`) the candidate's
  production evidence too (`evals/rollout.py`): enough shadow or canary questions, no regression beyond the
  margins against the adapter promoted now; then both answer the held-out set again, and a candidate whose
  answer lines are correct less often than the promoted adapter's by more than `rollout.held_out_margin` stays
  where it is.
- **rollback**, from any stage: a candidate in shadow or canary leaves it (everyone is served the promoted
  adapter again); with no rollout in progress, the previously promoted adapter is served again.

With the serving engine, a candidate is served beside the promoted adapter as a LoRA adapter of the same engine;
an engine serving one merged adapter cannot, and the move is refused with one line.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.adapters import (
    AdapterRecord,
    adapters_dir,
    check_servable,
    read_promoted,
    read_record,
    resolve_adapter,
    served_record,
    write_record,
)
from assistant.errors import ConfigError
from assistant.rollout import Rollout, Stage, now, read_rollout, rollout_path, write_rollout
from assistant.settings import SAMPLE_GOLDEN, Settings
from assistant.store import VectorStore
from evals.answers import evaluate_answers
from evals.datasets import load_golden
from evals.rollout import adapter_name, promotion_evidence
from tuning import registry

if TYPE_CHECKING:
    from assistant.components import Components


def stage_of(settings: Settings, record: AdapterRecord) -> str:
    """Where the adapter stands now: promoted, shadow 20%, canary 10%, or its last move (candidate: none)."""
    if record.id == read_promoted(settings).current:
        return "promoted"
    rollout = read_rollout(adapters_dir(settings))
    if rollout is not None and rollout.adapter == record.id:
        return f"{rollout.stage} {rollout.share:.0%}"
    last = record.rollout[-1]["to"] if record.rollout else "candidate"
    return "candidate" if last in ("shadow", "canary") else str(last)  # a stage it left without a record: ended


def last_move(record: AdapterRecord) -> str:
    """When, who and why of the adapter's last move ("" when it never moved), as status tables show it."""
    if not record.rollout:
        return ""
    move = record.rollout[-1]
    return f"{move['when']} {move['who']}: {move['why']}"


def recorded(record: AdapterRecord, to: str, who: str, why: str, evidence: dict[str, Any]) -> AdapterRecord:
    move = {"from": _last(record), "to": to, "who": who, "when": now(), "why": why, "evidence": evidence}
    return write_record(dataclasses.replace(record, rollout=(*record.rollout, move)))


def _last(record: AdapterRecord) -> str:
    return str(record.rollout[-1]["to"]) if record.rollout else "candidate"


def start(
    settings: Settings, adapter_id: str, stage: Stage, share: float, who: str, why: str, store: VectorStore
) -> AdapterRecord:
    """Put `adapter_id` in shadow or canary at `share`; ConfigError with the reason when it may not go there."""
    if not 0 < share <= 1:
        raise ConfigError(f"--share {share}: give a share in (0, 1], e.g. 0.2 for 20%")
    if not why.strip():
        raise ConfigError("say why (--why): the record keeps it with the move")
    folder = adapters_dir(settings)
    record = read_record(folder / adapter_id)
    promoted = read_promoted(settings).current
    if adapter_id == promoted:
        raise ConfigError(f"{adapter_id} is the promoted adapter: it serves everyone already")
    rollout = read_rollout(folder)
    if rollout is not None and rollout.adapter != adapter_id:
        raise ConfigError(
            f"{rollout.adapter} is in {rollout.stage}: promote it or roll it back (`assistant tune rollback`) first"
        )
    check_servable(record, settings.generator.model)
    served = served_record(record, store)  # its sources are in the index: who it may be served to
    evidence: dict[str, Any] = {"share": share, "offline": record.metrics.get("handbook", {})}
    if stage == "canary":
        current = read_record(folder / promoted) if promoted else None
        check = registry.promotion_check(record, current, store)
        if not check.ok:
            raise ConfigError(f"no canary for {adapter_id}: " + "; ".join(check.failures))
        if rollout is not None and rollout.stage == "shadow":
            shadow = promotion_evidence(
                settings.data_dir,
                adapter_id,
                _served_name(settings),
                rollout.since,
                min_questions=0,
                margins=settings.rollout.margins,
            )
            evidence["shadow"] = shadow.to_json()
    check_engine(settings, served)
    write_rollout(folder, Rollout(adapter_id, stage, share, now()))
    return recorded(record, stage, who, why, evidence)


def check_engine(settings: Settings, record: AdapterRecord) -> None:
    """With the engine backend, the running engine must take the candidate as a LoRA adapter beside the base."""
    if settings.generator.backend != "engine":
        return
    from assistant.engine import EngineError, EngineGenerator

    try:
        EngineGenerator(settings.generator, settings.engine, record).load()
    except EngineError as exc:
        raise ConfigError(
            f"the engine cannot serve {record.id} beside the promoted adapter ({exc}); shadow and canary need the "
            "engine in LoRA mode (`assistant serve-model` without --merged), or a second engine for the candidate"
        ) from exc


@dataclass(frozen=True)
class Promotion:
    record: AdapterRecord
    evidence: dict[str, Any] | None


def promote(
    settings: Settings,
    adapter_id: str,
    who: str,
    why: str,
    components: Components,
    *,
    evidence: bool = False,
    held_out: Path | None = None,
) -> Promotion:
    """Serve `adapter_id` to everyone, if it meets the offline gates and (with `evidence`, or when the settings
    require it) its rollout evidence and the held-out comparison (`held_out`: the answerable set to re-run,
    default the handbook's golden set); the evidence is saved in the record."""
    folder = adapters_dir(settings)
    rollout = read_rollout(folder)
    found: dict[str, Any] | None = None
    if evidence or settings.rollout.require_evidence:
        if rollout is None or rollout.adapter != adapter_id:
            raise ConfigError(
                f"not promoting {adapter_id}: it has no rollout evidence; put it in shadow or canary first "
                "(`assistant tune rollout shadow|canary`)"
            )
        check = promotion_evidence(
            settings.data_dir,
            adapter_id,
            _served_name(settings),
            rollout.since,
            min_questions=settings.rollout.min_questions,
            margins=settings.rollout.margins,
        )
        if not check.ok:
            raise ConfigError(f"not promoting {adapter_id}: " + "; ".join(check.failures))
        comparison = held_out_comparison(components, adapter_id, held_out or settings.repo_dir / SAMPLE_GOLDEN)
        found = {**check.to_json(), "held_out": comparison}
        mine, theirs = comparison["candidate"], comparison["promoted"]
        if theirs["line_correct"] - mine["line_correct"] > settings.rollout.held_out_margin:
            raise ConfigError(
                f"not promoting {adapter_id}: on the held-out set {comparison['set']} its answer lines are correct "
                f"for {mine['line_correct']:.3f}, against {theirs['line_correct']:.3f} for {theirs['adapter']}: "
                f"worse by more than {settings.rollout.held_out_margin}"
            )
    record = registry.promote(settings, adapter_id, components.store)  # the offline gates: ConfigError if unmet
    if rollout is not None and rollout.adapter == adapter_id:
        write_rollout(folder, None)
    return Promotion(recorded(record, "promoted", who, why or "promoted", found or {}), found)


def held_out_comparison(components: Components, adapter_id: str, answerable: Path) -> dict[str, Any]:
    """The candidate and the adapter served now, answering the held-out set with the same retrieval: their share
    of correct and of wrong answer lines (key facts, `evals/answers.py`)."""
    golden = load_golden(answerable)
    figures: dict[str, Any] = {"set": golden.name}
    for role, record in (("candidate", components.candidate(adapter_id)), ("promoted", components.adapter)):
        run = evaluate_answers(components.answerer_with(record), golden)
        figures[role] = {
            "adapter": adapter_name(record.id if record is not None else None),
            "line_correct": float(run.aggregate.get("line_correct", 0.0)),
            "line_wrong": float(run.aggregate.get("line_wrong", 0.0)),
            "questions": len(run.samples),
        }
    return figures


def rollback(settings: Settings, who: str, why: str) -> str:
    """From any stage, at once: end the rollout in progress, else serve the previously promoted adapter again.
    Returns the line saying what is served now."""
    folder = adapters_dir(settings)
    try:
        rollout = read_rollout(folder)
    except ConfigError:  # unreadable (the runtime already ignores it): replaced, nothing else changes
        write_rollout(folder, None)
        return f"{rollout_path(folder)} was unreadable and is replaced: no rollout is in progress"
    promoted = read_promoted(settings).current
    if rollout is not None:
        write_rollout(folder, None)  # first: the next question is served the promoted adapter
        recorded(read_record(folder / rollout.adapter), "rolled back", who, why, {"stage": rollout.stage})
        return f"{rollout.adapter} left {rollout.stage}: everyone is served {promoted or 'the shipped adapter'}"
    if promoted is None:
        raise ConfigError("no adapter is promoted and none is in rollout: nothing to roll back")
    previous = registry.rollback(settings)
    recorded(read_record(folder / promoted), "rolled back", who, why, {"stage": "promoted", "now_served": previous})
    return f"now serving {previous}" if previous else "no adapter promoted: the shipped adapter serves"


def _served_name(settings: Settings) -> str:
    """The adapter everyone outside the rollout is served, as the question log names it (the shipped adapter's
    id when none is promoted; "base" for none)."""
    record = resolve_adapter(settings)
    return adapter_name(record.id if record is not None else None)
