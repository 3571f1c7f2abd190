"""Generation speed for a RAG prompt of about 1,000 tokens: time to first token (prefill) and decode tokens/s.
Prints figures; asserts nothing.

    python -m benchmarks.generate [--adapter DIR] [--device cpu|cuda] [--new-tokens 64] [--json OUT]

Uses the configured base model (the bundled Gemma 3 270M by default) with greedy decoding, as the answer step
does. Targets from the answers issue, on 2 CPU cores: prefill of 1k tokens <= 3 s, decode >= 25 tokens/s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from assistant.generator import Generator
from assistant.prompt import FEW_SHOT, ContextBlock, render_prompt
from assistant.settings import load_settings

HANDBOOK = Path(__file__).resolve().parents[1] / "samples" / "handbook"


def rag_prompt(generator: Generator, target_tokens: int) -> str:
    """A realistic prompt: handbook passages as numbered blocks until the prompt reaches `target_tokens`."""
    texts = [p.read_text(encoding="utf-8") for p in sorted(HANDBOOK.rglob("*.md"))]
    blocks: list[ContextBlock] = []
    for text in texts:
        words = text.split()
        for start in range(0, len(words), 120):
            blocks.append(ContextBlock("Handbook", None, " ".join(words[start : start + 120])))
            prompt = render_prompt("How many floating holidays do I get?", blocks, examples=FEW_SHOT)
            if generator.count_tokens(prompt, as_prompt=True) >= target_tokens:
                return prompt
    return render_prompt("How many floating holidays do I get?", blocks, examples=FEW_SHOT)


def time_one(generator: Generator, prompt: str, new_tokens: int) -> tuple[float, float]:
    """(seconds to the first token, decode tokens/s after it), from a 1-token and an N-token greedy run."""
    first = generator.generate(prompt, max_new_tokens=1, exact_length=True)
    full = generator.generate(prompt, max_new_tokens=new_tokens, exact_length=True)
    return first.seconds, (full.completion_tokens - 1) / max(full.seconds - first.seconds, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", type=Path, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--prompt-tokens", type=int, default=1000)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = load_settings()
    config = settings.generator.model_copy(update={"adapter": args.adapter, "device": args.device})
    generator = Generator(config, settings.models_dir)
    t0 = time.perf_counter()
    prompt = rag_prompt(generator, args.prompt_tokens)
    load_s = time.perf_counter() - t0
    time_one(generator, prompt, 4)  # warm up
    runs = [time_one(generator, prompt, args.new_tokens) for _ in range(args.runs)]
    figures = {
        "model": config.model,
        "adapter": str(args.adapter) if args.adapter else None,
        "device": generator.device,
        "load_and_prompt_s": load_s,
        "prompt_tokens": generator.count_tokens(prompt, as_prompt=True),
        "new_tokens": args.new_tokens,
        "ttft_s_median": statistics.median(r[0] for r in runs),
        "decode_tokens_per_s_median": statistics.median(r[1] for r in runs),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
