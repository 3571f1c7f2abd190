"""The recall gate on development data only: how well "similarity + weight * term coverage >= threshold" separates
questions to answer from questions to refuse, at the configured setting and at the best-F1 one. This is where the
gate's threshold and weight are chosen; `assistant eval gate` on the held-out sets only measures them.

    python -m benchmarks.gate_dev [--json FILE]

To answer: the everyday-language development set (`samples/handbook-everyday-dev.jsonl`) and every answerable
curated handbook item that repeats no held-out question, each asked by its document's groups (and again by a plain
employee where that employee may not read the document: the answer exists, but not for them). To refuse: every
unanswerable curated item (63), asked by a plain employee. Retrieval only: no model is loaded.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from assistant.components import open_components
from assistant.settings import load_settings
from benchmarks.dev_answers import ITEMS, PIP_SETS, answerable_queries
from evals import gate as gate_calibration
from evals.datasets import EvalQuery, EvalSet, load_golden
from evals.gate import GateSample
from evals.held_out import training_exclusion
from tuning.build_data import chunks_by_document
from tuning.evidence_data import held_out_questions
from tuning.items import load_items

EVERYDAY = Path("samples/handbook-everyday-dev.jsonl")


def trade_off(samples: list[GateSample], everyday: set[str], console: Console) -> list[dict[str, float]]:
    """Per weight, the highest threshold that refuses at most 5% of the everyday questions (issue 31's bound),
    and what it refuses of the rest: what the gate can and cannot do alone."""
    answerable = [s for s in samples if not s.should_refuse]
    typed = [s for s in answerable if s.question in everyday]
    to_refuse = [s for s in samples if s.should_refuse]
    rows = []
    table = Table(title="the gate that refuses at most 5% of everyday questions, per weight")
    for column in ("weight", "threshold", "everyday refused", "all answerable refused", "unanswerable refused"):
        table.add_column(column, justify="right")
    for weight in (*gate_calibration.WEIGHTS, 0.8, 1.0):

        def refused(group: list[GateSample], threshold: float, w: float = weight) -> float:
            return sum(s.evidence(w) < threshold for s in group) / len(group)

        scores = sorted({round(s.evidence(weight), 4) for s in typed})
        threshold = max([t for t in scores if refused(typed, t) <= 0.05], default=0.0)
        row = {
            "weight": weight,
            "threshold": threshold,
            "everyday_refused": refused(typed, threshold),
            "answerable_refused": refused(answerable, threshold),
            "unanswerable_refused": refused(to_refuse, threshold),
        }
        rows.append(row)
        table.add_row(*(f"{value:.3f}" for value in row.values()))
    console.print(table)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="Write both settings' figures and every sample here.")
    args = parser.parse_args()
    settings = load_settings()
    held_out, _ = held_out_questions(settings.repo_dir, PIP_SETS)
    items = [
        item
        for item in load_items(settings.repo_dir / ITEMS, "handbook")
        if training_exclusion(item.question, held_out) is None
    ]
    with open_components(settings) as components:
        groups_of = {
            doc: chunks[0].groups for doc, chunks in chunks_by_document(components, settings.store.collection).items()
        }
        everyday = load_golden(settings.repo_dir / EVERYDAY).queries
        answerable = [*everyday, *answerable_queries(items, groups_of)]
        unanswerable = [EvalQuery(i.id, i.question, {}, ("everyone",)) for i in items if not i.answerable]
        samples = gate_calibration.collect(
            components.retriever(),
            components.recall_gate,
            EvalSet("handbook-development", "golden", None, answerable, None),
            EvalSet("handbook-development-unanswerable", "golden", None, unanswerable, None),
        )
    print(f"{len(answerable)} answerable ({len(everyday)} everyday) and {len(unanswerable)} unanswerable questions")
    console = Console()
    figures = gate_calibration.report(samples, settings.recall_gate, console)
    figures["at_most_5pct_everyday_refused"] = trade_off(samples, {q.text for q in everyday}, console)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
