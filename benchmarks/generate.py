"""Generation speed for a RAG prompt of about 1,000 tokens: time to first token (prefill) and decode tokens/s.
Prints figures; asserts nothing.

    python -m benchmarks.generate [--adapter DIR|fresh] [--device cpu|cuda] [--new-tokens 64] [--json OUT]

Uses the configured base model (the bundled Gemma 3 270M by default) with greedy decoding, as the answer step
does. Targets from the answers issue, on 2 CPU cores: prefill of 1k tokens <= 3 s, decode >= 25 tokens/s.
`--adapter fresh` times an untrained LoRA of the tuning recipe's shape (r=16 on q/k/v/o) until a tuned one
exists: the generator merges an adapter into the weights, so its speed is what matters, not its answers.
On CPU it times the plain output layer and the shortlist head (`generator.shortlist_head`), and checks that
both write the same greedy token ids for several ~1k-token prompts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from assistant.generator import Generator, resolve_base_model
from assistant.prompt import FEW_SHOT, ContextBlock, render_prompt
from assistant.settings import GeneratorSettings, load_settings

HANDBOOK = Path(__file__).resolve().parents[1] / "samples" / "handbook"


QUESTIONS = [
    "How many floating holidays do I get?",
    "How much parental leave do birthing parents get?",
    "Can I expense a standing desk for my home office?",
    "Who do I call when a robot arm fails on the line?",
    "How do I request access to the production database?",
]


def rag_prompt(generator: Generator, target_tokens: int, question: str = QUESTIONS[0]) -> str:
    """A realistic prompt: handbook passages as numbered blocks until the prompt reaches `target_tokens`."""
    texts = [p.read_text(encoding="utf-8") for p in sorted(HANDBOOK.rglob("*.md"))]
    blocks: list[ContextBlock] = []
    for text in texts:
        words = text.split()
        for start in range(0, len(words), 120):
            blocks.append(ContextBlock("Handbook", None, " ".join(words[start : start + 120])))
            prompt = render_prompt(question, blocks, examples=FEW_SHOT)
            if generator.count_tokens(prompt, as_prompt=True) >= target_tokens:
                return prompt
    return render_prompt(question, blocks, examples=FEW_SHOT)


def time_one(generator: Generator, prompt: str, new_tokens: int) -> tuple[float, float]:
    """(seconds to the first token, decode tokens/s after it), from a 1-token and an N-token greedy run."""
    first = generator.generate(prompt, max_new_tokens=1, exact_length=True)
    full = generator.generate(prompt, max_new_tokens=new_tokens, exact_length=True)
    return first.seconds, (full.completion_tokens - 1) / max(full.seconds - first.seconds, 1e-9)


def fresh_adapter(base: str, folder: Path) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    lora = LoraConfig(r=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM")
    get_peft_model(AutoModelForCausalLM.from_pretrained(base), lora).save_pretrained(str(folder))
    return folder


def measure(generator: Generator, prompt: str, new_tokens: int, runs: int) -> dict[str, float]:
    time_one(generator, prompt, 4)  # warm up
    timings = [time_one(generator, prompt, new_tokens) for _ in range(runs)]
    return {
        "ttft_s_median": statistics.median(t[0] for t in timings),
        "decode_tokens_per_s_median": statistics.median(t[1] for t in timings),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", default=None, help="A peft adapter directory, or `fresh`.")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--prompt-tokens", type=int, default=1000)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = load_settings()
    with tempfile.TemporaryDirectory(prefix="fresh-adapter-") as scratch:
        adapter = Path(args.adapter) if args.adapter else None
        if args.adapter == "fresh":
            adapter = fresh_adapter(resolve_base_model(settings.generator.model, settings.models_dir), Path(scratch))
        config = settings.generator.model_copy(update={"adapter": adapter, "device": args.device})
        figures = run_variants(config, settings.models_dir, args.prompt_tokens, args.new_tokens, args.runs)
    figures["adapter"] = args.adapter
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


def run_variants(
    config: GeneratorSettings, models_dir: Path, prompt_tokens: int, new_tokens: int, runs: int
) -> dict[str, Any]:
    """Time the plain output layer and, on CPU, the shortlist head; compare their greedy token ids."""
    variants = {"plain": config.model_copy(update={"shortlist_head": None})}
    if Generator(config, models_dir).device == "cpu" and config.shortlist_head:
        variants[f"shortlist-{config.shortlist_head}"] = config
    figures: dict[str, Any] = {"model": config.model, "new_tokens": new_tokens}
    continuations: dict[str, list[tuple[int, ...]]] = {}
    for name, variant in variants.items():
        generator = Generator(variant, models_dir)
        started = time.perf_counter()
        prompts = [rag_prompt(generator, prompt_tokens, q) for q in QUESTIONS]
        figures[name] = {
            "device": generator.device,
            "load_and_prompt_s": time.perf_counter() - started,
            "prompt_tokens": generator.count_tokens(prompts[0], as_prompt=True),
            **measure(generator, prompts[0], new_tokens, runs),
        }
        print(name, json.dumps(figures[name]), flush=True)
        continuations[name] = [
            generator.generate(p, max_new_tokens=new_tokens, exact_length=True).token_ids for p in prompts
        ]
    if len(continuations) > 1:
        plain, *others = continuations.values()
        figures["same_token_ids"] = [sum(a == b for a, b in zip(plain, o, strict=True)) for o in others]
        figures["prompts_compared"] = len(plain)
    return figures


if __name__ == "__main__":
    main()
