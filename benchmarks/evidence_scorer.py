"""How good is an evidence scorer (`assistant/evidence.py`)? Prints, asserts nothing:

- its record's figures on its validation split (pairs of training questions held out of training): accuracy,
  precision and recall at 0.5, AUC, log loss, and the training seconds;
- on the held-out handbook golden set (`samples/handbook-golden.jsonl`: measured here, never trained on), each
  question asked as its user over the top `--blocks` retrieved blocks: the share of questions where the sentence
  the scorer ranks first states a key fact (`evals.key_facts`; yes/no verdicts aside), in its top 3, against the
  bundled MiniLM's cosine ranking of the same sentences, and the share where any sentence of the blocks does (the
  ceiling);
- answerability at 0.5: the share of golden questions whose best sentence scores >= 0.5, and of the out-of-corpus
  questions (`samples/out-of-corpus.jsonl`) whose best scores below it.

    python -m benchmarks.evidence_scorer --model FOLDER [--blocks 3] [--json FILE]

Syncs `samples/handbook` into the `handbook` collection of ASSISTANT_DATA_DIR first (nothing is embedded again
when it is unchanged).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant.access import Principal
from assistant.components import Components, open_components
from assistant.evidence import SHIPPED_EVIDENCE, EvidenceScorer, block_sentences
from assistant.settings import CHECKOUT, SAMPLE_GOLDEN, SAMPLE_OUT_OF_CORPUS, load_settings
from ingestion.run import run_ingest

COLLECTION = "handbook"
VERDICTS = ("yes", "no")
FactsFound = Callable[[Sequence[str], str], list[bool]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=SHIPPED_EVIDENCE, help="A scorer folder (evidence.json).")
    parser.add_argument("--blocks", type=int, default=3, help="Retrieved blocks shown (the runtime shows 3).")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    scorer = EvidenceScorer.load(args.model)
    record = scorer.record
    figures: dict[str, Any] = {
        "scorer": record.id,
        "validation": record.metrics.get("validation", {}),
        "training_seconds": record.training.get("seconds"),
        "training_steps": record.training.get("steps"),
        "data": {split: record.data.get(split) for split in ("train", "validation")},
    }
    print(f"scorer {record.id}: trained {record.training.get('seconds')} s, {record.training.get('steps')} steps")
    print(f"validation split: {json.dumps(figures['validation'])}")
    settings = load_settings()
    with open_components(settings) as components:
        run_ingest(components, CHECKOUT / "samples/handbook", COLLECTION)
        figures["golden"] = golden(components, scorer, args.blocks)
        figures["out_of_corpus"] = out_of_corpus(components, scorer, args.blocks)
    for name in ("golden", "out_of_corpus"):
        print(f"{name}: {json.dumps(figures[name])}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")


def _questions(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _blocks(components: Components, line: dict[str, Any], count: int) -> list[str]:
    principal = Principal.of("evidence-benchmark", line["groups"])
    return [c.text for c in components.retriever(COLLECTION).search(principal, line["question"], top_k=count).chunks]


def _facts_found() -> FactsFound | None:
    try:
        from evals.key_facts import facts_found
    except ImportError:  # a checkout without key facts: the answerability figures only
        return None
    return facts_found


def golden(components: Components, scorer: EvidenceScorer, count: int) -> dict[str, Any]:
    facts_found = _facts_found()
    lines = _questions(components.settings.repo_dir / SAMPLE_GOLDEN)
    asked = top = top3 = cosine = ceiling = answerable = 0
    for line in lines:
        question = line["question"]
        blocks = _blocks(components, line, count)
        ranked = scorer.rank(question, blocks)
        answerable += bool(ranked) and ranked[0].score >= 0.5
        facts = [f for f in line.get("key_facts") or () if f.strip().lower() not in VERDICTS]
        if facts_found is None or not facts:
            continue
        asked += 1
        top += bool(ranked) and any(facts_found(facts, ranked[0].sentence))
        top3 += any(any(facts_found(facts, s.sentence)) for s in ranked[:3])
        sentences = list(dict.fromkeys(s for block in blocks for s in block_sentences(block)))
        ceiling += any(any(facts_found(facts, s)) for s in sentences)
        if sentences:
            vectors = components.embedder.embed_documents(sentences)
            best = int(np.argmax(vectors @ components.embedder.embed_query(question)))
            cosine += any(facts_found(facts, sentences[best]))
    result: dict[str, Any] = {
        "questions": len(lines),
        "answerable_at_0.5": round(answerable / len(lines), 3) if lines else None,
    }
    if asked:
        result.update(
            with_key_facts=asked,
            top_states_key_fact=round(top / asked, 3),
            top3_states_key_fact=round(top3 / asked, 3),
            minilm_cosine_top_states_key_fact=round(cosine / asked, 3),
            any_sentence_states_key_fact=round(ceiling / asked, 3),
        )
    return result


def out_of_corpus(components: Components, scorer: EvidenceScorer, count: int) -> dict[str, Any]:
    lines = _questions(components.settings.repo_dir / SAMPLE_OUT_OF_CORPUS)
    best = [scorer.answerability(line["question"], _blocks(components, line, count)) for line in lines]
    refused = sum(score < 0.5 for score in best)
    return {
        "questions": len(lines),
        "unanswerable_at_0.5": round(refused / len(lines), 3) if lines else None,
        "mean_best_score": round(float(np.mean(best)), 3) if best else None,
    }


if __name__ == "__main__":
    main()
