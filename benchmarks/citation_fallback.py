"""Where a citation goes when its sentence cannot place it ("No [", "The evidence supports the claim ["): the
retriever's best block, or the block sharing most of the question's words. Measured on training questions only
(curated handbook items, SciFact *train* claims), never on the held-out sets. Prints figures; asserts nothing.

    python -m benchmarks.citation_fallback

Needs the `handbook` and `tuning-scifact` collections (`assistant tune build-data --recipe
tuning/recipes/handbook-cpu.yaml` ingests both). For each answerable question whose document is among the blocks
an adapter is shown, it counts how often each rule names a block of that document (among the blocks with a
sentence to quote, as the grammar does).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from assistant.access import Principal
from assistant.components import open_components
from assistant.errors import ConfigError
from assistant.quote_constraint import content_words, most_shared, quote_candidates
from assistant.retriever import Retriever
from assistant.settings import CHECKOUT, load_settings
from tuning.build_data import SCIFACT_COLLECTION
from tuning.items import Item, load_items, scifact_items

DEFAULT_SCIFACT = Path(__file__).resolve().parents[2] / "shared/data/beir/scifact"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=Path, default=CHECKOUT / "tuning/data/handbook-items.jsonl")
    parser.add_argument("--scifact", type=Path, default=DEFAULT_SCIFACT)
    args = parser.parse_args()
    sets = {
        "handbook": [i for i in load_items(args.items, "handbook") if i.answerable],
        SCIFACT_COLLECTION: [i for i in scifact_items(args.scifact.resolve(), "train") if i.answerable],
    }
    principal = Principal.of("benchmark", ["everyone"])
    with open_components(load_settings()) as components:
        adapter = components.adapter
        if adapter is None:
            raise ConfigError("no adapter is served (generator.use_promoted_adapter is off): nothing to measure")
        for collection, items in sets.items():
            if not components.store.has_collection(collection):
                raise ConfigError(f"no collection {collection!r}: run `assistant tune build-data` first")
            compare(components.retriever(collection), principal, collection, items, adapter.context_blocks)


def compare(retriever: Retriever, principal: Principal, name: str, items: list[Item], shown_blocks: int) -> None:
    """`shown_blocks`: how many retrieved blocks the served adapter sees, as the runtime shows them."""
    shown_count = first = by_question = decided = 0
    for item in items:
        blocks = retriever.search(principal, item.question).chunks[:shown_blocks]
        relevant = {k for k, chunk in enumerate(blocks) if chunk.doc_id == item.doc_id}
        if not relevant:
            continue
        shown_count += 1
        quotable = [k for k, chunk in enumerate(blocks) if quote_candidates(chunk.text)] or [0]  # as the grammar
        first += quotable[0] in relevant
        best = most_shared(content_words(item.question), [content_words(chunk.text) for chunk in blocks])
        best = [k for k in best if k in quotable]
        decided += bool(best)
        by_question += (best or quotable)[0] in relevant  # a tie: the first of the winners; none: the first block
    shown = max(shown_count, 1)
    print(
        f"{name}: {shown_count} of {len(items)} questions with their document shown; the citation names it with "
        f"the retriever's best block {first / shown:.3f}, with the question's words {by_question / shown:.3f} "
        f"(they decide {decided / shown:.0%} of the time, else the first block)"
    )


if __name__ == "__main__":
    main()
