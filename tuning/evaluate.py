"""`assistant tune eval`: the base model with its best prompt (worked examples, every retrieved block) against an
adapter with its short prompt, on questions no training example repeats: the handbook golden and out-of-corpus
sets, and SciFact test claims (a different domain: does the behaviour carry over?)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from assistant.adapters import SHIPPED, adapters_dir
from assistant.components import open_components
from assistant.settings import SAMPLE_GOLDEN, SAMPLE_OUT_OF_CORPUS, Settings
from evals.answers import evaluate_answers
from evals.datasets import load_claims, load_golden
from evals.tables import render_aggregate
from tuning.build_data import SCIFACT_COLLECTION

BASE = "base"
SHIPPED_ID = "shipped"  # the adapter shipped in the package (assistant/shipped_adapter), not in the registry
SCIFACT = Path("../shared/data/beir/scifact")


def adapter_folder(settings: Settings, adapter_id: str) -> Path | None:
    """`base`: no adapter; `shipped`: the package's; otherwise a registered adapter."""
    if adapter_id == BASE:
        return None
    return SHIPPED if adapter_id == SHIPPED_ID else adapters_dir(settings) / adapter_id


def evaluate_adapter(
    settings: Settings, adapter_id: str, limit: int | None, scifact_claims: int, console: Console
) -> dict[str, Any]:
    generator = settings.generator.model_copy(
        update={"adapter": adapter_folder(settings, adapter_id), "use_promoted_adapter": False}
    )
    settings = settings.model_copy(update={"generator": generator})
    figures: dict[str, Any] = {}
    repo = settings.repo_dir
    with open_components(settings) as components:
        handbook = evaluate_answers(
            components.answerer(log_questions=False),
            load_golden(repo / SAMPLE_GOLDEN),
            load_golden(repo / SAMPLE_OUT_OF_CORPUS),
            limit,
        )
        handbook.save(settings.eval_runs_dir)
        figures["handbook"] = handbook.aggregate
        render_aggregate(f"{adapter_id}: handbook, {len(handbook.samples)} questions", handbook.aggregate, console, 3)
        if scifact_claims and (repo / SCIFACT).is_dir():
            claims = load_claims(repo / SCIFACT, "test", ("everyone",), scifact_claims)
            run = evaluate_answers(components.answerer(SCIFACT_COLLECTION, log_questions=False), claims, None, None)
            run.save(settings.eval_runs_dir)
            figures["scifact"] = {**run.aggregate, "claims": len(run.samples)}
            render_aggregate(f"{adapter_id}: SciFact test, {len(run.samples)} claims", run.aggregate, console, 3)
    return figures
