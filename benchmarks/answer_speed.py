"""One person asking, nobody else: time to first token and decode tokens/s of whole answers through the answer
pipeline, in-process and through the engine. Prints figures; asserts nothing.

    python -m benchmarks.answer_speed [--engine-url URL] [--json OUT]

Asks the same five handbook questions as Dana, one after another, on the index of `./assistant-data` (ingest
`samples/handbook` first) with the served adapter, greedy: first in-process (transformers in this process), then,
with `--engine-url`, through a running engine (`assistant serve-model`). Per answer: seconds from the call to the
first streamed text (retrieval and prompt included: what a reader waits), seconds to the end, completion tokens,
and decode tokens/s after the first token. One warm-up answer per backend is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from assistant.access import Principal
from assistant.answering import Answerer
from assistant.components import open_components
from assistant.settings import Settings, load_settings

QUESTIONS = [
    "How many floating holidays do I get each year?",
    "How do I reset my password?",
    "What is the hotel limit when I travel?",
    "How do I report a lost laptop?",
    "When are expense reports due?",
]
DANA = Principal.of("dana", ["everyone"])


def time_answer(answerer: Answerer, question: str) -> dict[str, float]:
    started = time.perf_counter()
    first: float | None = None
    with answerer.stream(DANA, question) as stream:
        for piece in stream:
            if piece and first is None:
                first = time.perf_counter() - started
        answer = stream.answer
    total = time.perf_counter() - started
    ttft = first if first is not None else total
    tokens = answer.completion_tokens
    return {
        "ttft_s": ttft,
        "answer_s": total,
        "completion_tokens": tokens,
        "decode_tokens_per_s": (tokens - 1) / max(total - ttft, 1e-9) if tokens > 1 else 0.0,
    }


def measure(settings: Settings) -> dict[str, Any]:
    with open_components(settings) as components:
        answerer = components.answerer(log_questions=False)
        answerer.generator.load()
        time_answer(answerer, QUESTIONS[0])  # warm-up
        runs = [time_answer(answerer, q) for q in QUESTIONS]
    return {
        "backend": answerer.generator.backend,
        "ttft_s_median": statistics.median(r["ttft_s"] for r in runs),
        "answer_s_median": statistics.median(r["answer_s"] for r in runs),
        "decode_tokens_per_s_median": statistics.median(r["decode_tokens_per_s"] for r in runs),
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine-url", help="a running engine's OpenAI-compatible URL, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = load_settings()
    in_process = settings.generator.model_copy(update={"backend": "in-process"})
    figures: dict[str, Any] = {"in-process": measure(settings.model_copy(update={"generator": in_process}))}
    print("in-process", json.dumps({k: v for k, v in figures["in-process"].items() if k != "runs"}), flush=True)
    if args.engine_url:
        engine = settings.engine.model_copy(update={"url": args.engine_url})
        generator = settings.generator.model_copy(update={"backend": "engine"})
        figures["engine"] = measure(settings.model_copy(update={"engine": engine, "generator": generator}))
        print("engine", json.dumps({k: v for k, v in figures["engine"].items() if k != "runs"}), flush=True)
    figures["cpu_count"] = os.cpu_count()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
