"""What a second adapter costs in the app's process (a candidate in shadow or canary beside the promoted one), the
two ways transformers + peft allow, measured in one run. Prints figures; asserts nothing.

    python -m benchmarks.second_adapter [--new-tokens 64]

- **merged copies** (what `Components.model_for` does): each adapter is its own copy of the base model with the
  adapter merged in; resident memory after the first and after the second, and decode speed.
- **one base, two peft adapters**: `PeftModel.load_adapter` adds the second adapter to the same base, unmerged,
  and `set_adapter` switches between them; its memory and its decode speed (the LoRA matrices run at every
  token).

Both use the shipped adapter's weights for both adapters: the cost of holding and running an adapter does not
depend on what it learned. The prompt is the generate benchmark's ~1,000-token handbook prompt.
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
from typing import Any

import torch

from assistant.adapters import SHIPPED
from assistant.generator import Generator, resolve_base_model
from assistant.settings import load_settings
from benchmarks.generate import rag_prompt


def rss_mb() -> float:
    """Resident memory now (Linux /proc), in MB."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 1e6


def decode_rate(model: Any, tokenizer: Any, prompt: str, new_tokens: int) -> float:
    """Greedy decode tokens/s after the first token (as the generate benchmark measures it)."""
    inputs = tokenizer(prompt, return_tensors="pt")
    inputs.pop("token_type_ids", None)
    with torch.no_grad():
        started = time.perf_counter()
        model.generate(**inputs, max_new_tokens=1, min_new_tokens=1, do_sample=False)
        first = time.perf_counter() - started
        started = time.perf_counter()
        model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
        full = time.perf_counter() - started
    return (new_tokens - 1) / max(full - first, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=64)
    args = parser.parse_args()
    settings = load_settings()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    served = settings.generator.model_copy(update={"adapter": SHIPPED, "shortlist_head": 0})
    start = rss_mb()
    first = Generator(served, settings.models_dir)
    first.load()
    one = rss_mb()
    model, tokenizer = first._loaded
    prompt = rag_prompt(first, 1000)
    merged_rate = decode_rate(model, tokenizer, prompt, args.new_tokens)
    second = Generator(served, settings.models_dir)
    second.load()
    two = rss_mb()
    print(
        f"merged copies: process {start:.0f} MB; with one adapter {one:.0f} MB (+{one - start:.0f}); "
        f"with a second {two:.0f} MB (+{two - one:.0f}); decode {merged_rate:.1f} tok/s each"
    )
    del first, second, model
    gc.collect()

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    before = rss_mb()
    base = AutoModelForCausalLM.from_pretrained(resolve_base_model(settings.generator.model, settings.models_dir))
    peft_model = PeftModel.from_pretrained(base, str(SHIPPED), adapter_name="promoted")
    peft_model.eval()
    with_one = rss_mb()
    peft_model.load_adapter(str(SHIPPED), adapter_name="candidate")
    with_two = rss_mb()
    rates = {}
    for name in ("promoted", "candidate"):
        peft_model.set_adapter(name)
        rates[name] = decode_rate(peft_model, tokenizer, prompt, args.new_tokens)
    print(
        f"one base, two peft adapters: {before:.0f} MB before; base + one {with_one:.0f} MB "
        f"(+{with_one - before:.0f}); + a second {with_two:.0f} MB (+{with_two - with_one:.0f}); decode unmerged "
        f"{rates['promoted']:.1f} / {rates['candidate']:.1f} tok/s (merged: {merged_rate:.1f})"
    )


if __name__ == "__main__":
    main()
