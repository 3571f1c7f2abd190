"""How much token F1 an extractive answer can reach: each curated item's supporting sentence(s), copied as the
house format copies them, scored against the item's own reference answer. Prints figures; asserts nothing.

    python -m benchmarks.extractive_ceiling [--items tuning/data/handbook-items.jsonl]

Held-out answers are scored the same way (`evals.answers.token_f1`), so a model that copied the right sentence
would score about this; the gap to `assistant eval answers`' token F1 is the sentences it picks wrongly.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from assistant.settings import CHECKOUT
from evals.answers import token_f1
from tuning.items import load_items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=Path, default=CHECKOUT / "tuning/data/handbook-items.jsonl")
    args = parser.parse_args()
    items = [i for i in load_items(args.items, "handbook") if i.answerable]
    every = statistics.fmean(token_f1(" ".join(i.quotes), i.answer) for i in items)
    first = statistics.fmean(token_f1(i.quotes[0], i.answer) for i in items)
    print(f"{len(items)} answerable items: F1 of all quotes {every:.3f}, of the first quote alone {first:.3f}")


if __name__ == "__main__":
    main()
