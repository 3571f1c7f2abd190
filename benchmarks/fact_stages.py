"""Where the answer's facts are before the model writes: retrieval, the recall gate and the evidence scorer on
development questions only, with no generation (a run takes a minute, not an hour). For choosing retrieval,
ranking and gate settings; prints figures, asserts nothing.

    python -m benchmarks.fact_stages [--json FILE]
    ASSISTANT_RETRIEVAL__CHUNKS_PER_DOCUMENT=2 python -m benchmarks.fact_stages   # one setting against another

Three development sets, none held out (the held-out sets are measured once, by `assistant eval answers`):
- everyday: `samples/handbook-everyday-dev.jsonl`, training items reworded as employees type them, with key facts;
- validation: the adapter recipe's validation split of the curated handbook items (`benchmarks.dev_answers`), its
  key fact "quote 1 | quote 2" (the facts are there when one supporting sentence is);
- unanswerable: every unanswerable curated item (no document answers it), to count what the gate lets through.

For each answerable question: the key facts in the retrieved blocks, in the blocks the model reads, in the scorer's
top-1 and top-2 sentences (`evals.key_facts.facts_located`, as `assistant eval answers` counts them), and whether
it would be refused before generation. Each question is asked by a principal of its document's groups.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from assistant.access import Principal
from assistant.answering import Answerer, Prepared
from assistant.components import open_components
from assistant.settings import load_settings
from benchmarks.dev_answers import ITEMS, development_items
from evals.datasets import EvalQuery, load_golden
from evals.key_facts import facts_located
from tuning.build_data import chunks_by_document
from tuning.items import load_items

EVERYDAY = Path("samples/handbook-everyday-dev.jsonl")
WHERE = ("retrieved", "shown", "top1", "top2")


def located(query: EvalQuery, prepared: Prepared) -> dict[str, bool]:
    blocks = [c.text for c in prepared.read_first]
    top = prepared.top_sentences
    texts = {"retrieved": blocks, "shown": blocks[: len(prepared.shown)], "top1": top[:1], "top2": top[:2]}
    return {where: facts_located(query.key_facts, texts[where]) for where in WHERE}


def measure(answerer: Answerer, queries: list[EvalQuery], style: dict[str, str]) -> dict[str, dict[str, float]]:
    """Shares per group of questions ("all" and each style): facts at each stage, refused before generation."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for query in queries:
        prepared = answerer.prepare(Principal.of(f"dev:{query.qid}", list(query.groups)), query.text)
        found = located(query, prepared)
        for group in ("all", style.get(query.qid, "")):
            if not group:
                continue
            counts[group]["questions"] += 1
            counts[group]["refused"] += prepared.refusal is not None
            counts[group].update(where for where, yes in found.items() if yes)
    return {
        group: {"questions": c["questions"], "refused": c["refused"] / c["questions"]}
        | {f"facts_in_{where}": c[where] / c["questions"] for where in WHERE}
        for group, c in counts.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="Write the figures here.")
    args = parser.parse_args()
    settings = load_settings()
    repo = settings.repo_dir
    everyday = load_golden(repo / EVERYDAY).queries
    styles = {
        f"{EVERYDAY.stem}:{n}": json.loads(line).get("style", "")
        for n, line in enumerate((repo / EVERYDAY).read_text(encoding="utf-8").splitlines(), 1)
        if line.strip()
    }
    with open_components(settings) as components:
        groups_of = {
            doc: chunks[0].groups for doc, chunks in chunks_by_document(components, settings.store.collection).items()
        }
        validation = [
            EvalQuery(i.id, i.question, {i.doc_id: 1}, groups_of[i.doc_id], i.answer, None, (" | ".join(i.quotes),))
            for i in development_items(repo)
            if i.answerable and i.doc_id in groups_of
        ]
        unanswerable = [
            EvalQuery(i.id, i.question, {}, ("everyone",))
            for i in load_items(repo / ITEMS, "handbook")
            if not i.answerable
        ]
        answerer = components.answerer(log_questions=False)
        figures = {
            "everyday": measure(answerer, everyday, styles),
            "validation": measure(answerer, validation, {}),
        }
        refused = sum(
            answerer.prepare(Principal.of("dev", list(q.groups)), q.text).refusal is not None for q in unanswerable
        )
        figures["unanswerable"] = {"all": {"questions": len(unanswerable), "refused": refused / len(unanswerable)}}
    table = Table("set", "group", "n", "refused", *(f"facts in {w}" for w in WHERE))
    for name, groups in figures.items():
        for group, shares in groups.items():
            table.add_row(
                name,
                group,
                str(int(shares["questions"])),
                f"{shares['refused']:.3f}",
                *(f"{shares[f'facts_in_{w}']:.3f}" if f"facts_in_{w}" in shares else "" for w in WHERE),
            )
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
