"""Answers on the development items: curated handbook items that no adapter trained on (the adapter recipe's
validation split) and that repeat no held-out question. For trying an answer setting before the held-out sets
measure it once; prints figures, asserts nothing.

    ASSISTANT_EVIDENCE__FOCUS=true python -m benchmarks.dev_answers [--json FILE] [--all-unanswerable]

"Correct" here means the answer quotes every word of one of the item's supporting sentences (its key fact is
"quote 1 | quote 2 ..."), so it counts the right sentence, not the answer line; token F1 is against the item's
reference answer; unanswerable items should be refused. Each question is asked by a principal of its document's
groups (everyone for an unanswerable one), as the held-out sets are. `--all-unanswerable` asks every unanswerable
curated item (63, training split too: none of them taught an answer), not only the validation split's, for a
refusal rate with more power.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from assistant.components import open_components
from assistant.recipe import load_recipe
from assistant.settings import load_settings
from evals.answers import evaluate_answers
from evals.datasets import EvalQuery, EvalSet
from evals.held_out import training_exclusion
from evals.tables import render_aggregate
from tuning.build_data import chunks_by_document
from tuning.check import split_of
from tuning.evidence_data import held_out_questions
from tuning.items import Item, load_items

ITEMS = Path("tuning/data/handbook-items.jsonl")
ADAPTER_RECIPE = Path("tuning/recipes/handbook-cpu.yaml")
PIP_SETS = ["samples/pip-golden.jsonl", "samples/pip-unanswerable.jsonl"]


def development_items(repo: Path) -> list[Item]:
    share = load_recipe(repo / ADAPTER_RECIPE).data.validation_share
    held_out, _ = held_out_questions(repo, PIP_SETS)
    return [
        item
        for item in load_items(repo / ITEMS, "handbook")
        if split_of(item.question, share) == "validation" and training_exclusion(item.question, held_out) is None
    ]


def answerable_queries(items: list[Item], groups_of: dict[str, tuple[str, ...]]) -> list[EvalQuery]:
    """The answerable items whose document is indexed, as questions asked by its groups; the key fact is
    "quote 1 | quote 2" (the facts are there when one supporting sentence is)."""
    return [
        EvalQuery(i.id, i.question, {i.doc_id: 1}, groups_of[i.doc_id], i.answer, None, (" | ".join(i.quotes),))
        for i in items
        if i.answerable and i.doc_id in groups_of
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="Write the run (aggregate and samples) here.")
    parser.add_argument("--all-unanswerable", action="store_true", help="Every unanswerable curated item.")
    args = parser.parse_args()
    settings = load_settings()
    items = development_items(settings.repo_dir)
    with open_components(settings) as components:
        groups_of = {
            doc: chunks[0].groups for doc, chunks in chunks_by_document(components, settings.store.collection).items()
        }
        answerable = answerable_queries(items, groups_of)
        asked = load_items(settings.repo_dir / ITEMS, "handbook") if args.all_unanswerable else items
        unanswerable = [EvalQuery(i.id, i.question, {}, ("everyone",)) for i in asked if not i.answerable]
        run = evaluate_answers(
            components.answerer(log_questions=False),
            EvalSet("handbook-development", "golden", None, answerable, None),
            EvalSet("handbook-development-unanswerable", "golden", None, unanswerable, None),
        )
    print(f"{len(answerable)} answerable and {len(unanswerable)} unanswerable development items")
    render_aggregate("development answers", run.aggregate, Console(), 3)
    if args.json:
        args.json.write_text(json.dumps(run.aggregate | {"samples": [vars(s) for s in run.samples]}, indent=1))


if __name__ == "__main__":
    main()
