"""Where the answer's facts are before the model writes: retrieval, the recall gate and the evidence scorer on
development questions only, with no generation (a run takes a minute, not an hour). For choosing retrieval,
ranking and gate settings; prints figures, asserts nothing.

    python -m benchmarks.fact_stages [--json FILE] [--rows FILE] [--curated]
    ASSISTANT_RETRIEVAL__CHUNKS_PER_DOCUMENT=2 python -m benchmarks.fact_stages   # one setting against another

Three development sets, none held out (the held-out sets are measured once, by `assistant eval answers`):
- everyday: `samples/handbook-everyday-dev.jsonl`, training items reworded as employees type them, with key facts;
- validation: the adapter recipe's validation split of the curated handbook items (`benchmarks.dev_answers`), its
  key fact "quote 1 | quote 2" (the facts are there when one supporting sentence is);
- unanswerable: every unanswerable curated item (no document answers it), to count what the gate lets through;
- curated (with `--curated`): every answerable curated item, training and validation split alike (284 questions:
  more power for a small difference, three more minutes), never a question the held-out sets hold.

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
from benchmarks.dev_answers import ITEMS, PIP_SETS, answerable_queries, development_items
from evals.datasets import EvalQuery, load_golden
from evals.held_out import training_exclusion
from evals.key_facts import facts_located
from tuning.build_data import chunks_by_document
from tuning.evidence_data import held_out_questions
from tuning.items import load_items

EVERYDAY = Path("samples/handbook-everyday-dev.jsonl")
WHERE = ("retrieved", "shown", "top1", "top2")


def located(query: EvalQuery, prepared: Prepared) -> dict[str, bool]:
    blocks = [c.text for c in prepared.read_first]
    top = prepared.top_sentences
    texts = {"retrieved": blocks, "shown": blocks[: len(prepared.shown)], "top1": top[:1], "top2": top[:2]}
    return {where: facts_located(query.key_facts, texts[where]) for where in WHERE}


def row(name: str, query: EvalQuery, prepared: Prepared, found: dict[str, bool]) -> dict[str, object]:
    """One question's signals (for studying the gate and the ranking offline): the gate's evidence, the scorer's
    best and first-ranked probabilities, where the facts are, and the refusal."""
    evidence, selection = prepared.recall.evidence, prepared.selection
    first = selection.first_score if selection is not None else None
    return {
        "set": name,
        "qid": query.qid,
        "question": query.text,
        "answerable": bool(query.key_facts),
        "similarity": round(evidence.similarity, 4),
        "coverage": round(evidence.coverage, 4),
        "gate_score": round(evidence.score, 4),
        "best": round(selection.best, 4) if selection is not None else None,
        "first": round(first, 4) if first is not None else None,
        "refusal": prepared.refusal,
        "vouched": prepared.recall.vouched,
    } | found


def measure(
    answerer: Answerer, name: str, queries: list[EvalQuery], style: dict[str, str], rows: list[dict[str, object]]
) -> dict[str, dict[str, float]]:
    """Shares per group of questions ("all" and each style): facts at each stage, refused before generation."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for query in queries:
        prepared = answerer.prepare(Principal.of(f"dev:{query.qid}", list(query.groups)), query.text)
        found = located(query, prepared)
        rows.append(row(name, query, prepared, found))
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
    parser.add_argument("--rows", type=Path, help="Write each question's signals here (JSON lines).")
    parser.add_argument("--curated", action="store_true", help="Also every answerable curated item.")
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
        curated = load_items(repo / ITEMS, "handbook")
        held_out, _ = held_out_questions(repo, PIP_SETS)
        unanswerable = [EvalQuery(i.id, i.question, {}, ("everyone",)) for i in curated if not i.answerable]
        answerer = components.answerer(log_questions=False)
        rows: list[dict[str, object]] = []
        figures = {
            "everyday": measure(answerer, "everyday", everyday, styles, rows),
            "validation": measure(
                answerer, "validation", answerable_queries(development_items(repo), groups_of), {}, rows
            ),
        }
        if args.curated:
            usable = [i for i in curated if training_exclusion(i.question, held_out) is None]
            figures["curated"] = measure(answerer, "curated", answerable_queries(usable, groups_of), {}, rows)
        for query in unanswerable:
            prepared = answerer.prepare(Principal.of("dev", list(query.groups)), query.text)
            rows.append(row("unanswerable", query, prepared, {}))
        refused = sum(r["refusal"] is not None for r in rows if r["set"] == "unanswerable")
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
    if args.rows:
        args.rows.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


if __name__ == "__main__":
    main()
