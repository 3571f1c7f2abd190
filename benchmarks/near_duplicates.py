"""Near-duplicate training questions at scale: MinHash LSH (datasketch) against comparing every pair. Prints
figures; asserts nothing.

    python -m benchmarks.near_duplicates [--examples 100000] [--pairwise-sample 4000] [--json OUT]

Synthetic questions (6 to 14 words drawn from a 20,000-word vocabulary, Zipf-like), of which 10% are near
duplicates of an earlier one (a word added, or one swapped). The LSH index (`evals/near_duplicates.py`) runs over
all of them: time, peak memory of the index (tracemalloc) and the findings. The pairwise rule (what `tune check`
did before) runs over the first `--pairwise-sample` questions: its time is extrapolated to all of them by the
square of the count, and its findings there are compared with the index's on the same questions.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
import tracemalloc
from pathlib import Path
from typing import Any

from evals.near_duplicates import earlier_matches, earlier_matches_pairwise

VOCABULARY = [f"w{i:05d}" for i in range(20_000)]
WEIGHTS = [1 / (rank + 1) for rank in range(len(VOCABULARY))]  # a few common words, a long tail


def synthetic_questions(count: int, seed: int = 13) -> list[frozenset[str]]:
    rng = random.Random(seed)
    questions: list[frozenset[str]] = []
    while len(questions) < count:
        if questions and rng.random() < 0.1:
            base = sorted(rng.choice(questions))  # sorted: the same data whatever the hash seed
            if rng.random() < 0.5:
                base.append(rng.choice(VOCABULARY))
            else:
                base[rng.randrange(len(base))] = rng.choice(VOCABULARY)
            questions.append(frozenset(base))
        else:
            questions.append(frozenset(rng.choices(VOCABULARY, WEIGHTS, k=rng.randint(6, 14))))
    return questions


def timed(run: Any, *args: Any) -> tuple[Any, float, int]:
    """(result, seconds, peak bytes allocated meanwhile)."""
    tracemalloc.start()
    started = time.perf_counter()
    result = run(*args)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--pairwise-sample", type=int, default=4_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    questions = synthetic_questions(args.examples)
    sample = questions[: args.pairwise_sample]

    found, lsh_s, lsh_peak = timed(earlier_matches, questions)
    on_sample, sample_lsh_s, _ = timed(earlier_matches, sample)
    pairwise, pairwise_s, pairwise_peak = timed(earlier_matches_pairwise, sample)
    extrapolated = pairwise_s * (args.examples / len(sample)) ** 2
    figures = {
        "examples": args.examples,
        "lsh_seconds": round(lsh_s, 1),
        "lsh_peak_mb": round(lsh_peak / 2**20, 1),
        "lsh_near_duplicates": sum(bool(m) for m in found),
        "pairwise_sample": len(sample),
        "pairwise_seconds_on_sample": round(pairwise_s, 1),
        "lsh_seconds_on_sample": round(sample_lsh_s, 2),
        "pairwise_peak_mb_on_sample": round(pairwise_peak / 2**20, 1),
        "pairwise_seconds_extrapolated": round(extrapolated),
        "same_findings_on_sample": on_sample == pairwise,
        "sample_near_duplicates": sum(bool(m) for m in pairwise),
        "cpu_count": os.cpu_count(),
    }
    print(
        f"{args.examples:,} questions: LSH {lsh_s:.1f} s, index peak {lsh_peak / 2**20:.0f} MB, "
        f"{figures['lsh_near_duplicates']:,} with an earlier near duplicate"
    )
    print(
        f"pairwise on the first {len(sample):,}: {pairwise_s:.1f} s (LSH {sample_lsh_s:.2f} s), "
        f"same findings: {figures['same_findings_on_sample']} ({figures['sample_near_duplicates']} found); "
        f"extrapolated to {args.examples:,}: {extrapolated / 3600:.1f} h"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
