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
import resource
import subprocess
import sys
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


def merged_copies(new_tokens: int) -> str:
    settings = load_settings()
    served = settings.generator.model_copy(update={"adapter": SHIPPED, "shortlist_head": 0})
    start = rss_mb()
    first = Generator(served, settings.models_dir)
    first.load()
    one = rss_mb()
    model, tokenizer = first._loaded
    rate = decode_rate(model, tokenizer, rag_prompt(first, 1000), new_tokens)
    second = Generator(served, settings.models_dir)
    second.load()
    two = rss_mb()
    other, _ = second._loaded
    decode_rate(other, tokenizer, rag_prompt(first, 1000), new_tokens)
    end = rss_mb()
    return (
        f"merged copies: process {start:.0f} MB; with one adapter {one:.0f} MB (+{one - start:.0f}); with a second "
        f"{two:.0f} MB (+{two - one:.0f}); after both decoded {end:.0f} MB (+{end - start:.0f} in all); "
        f"decode {rate:.1f} tok/s"
    )


def peft_adapters(new_tokens: int) -> str:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = load_settings()
    path = resolve_base_model(settings.generator.model, settings.models_dir)
    start = rss_mb()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(path), str(SHIPPED), adapter_name="promoted")
    model.eval()
    one = rss_mb()
    model.load_adapter(str(SHIPPED), adapter_name="candidate")
    two = rss_mb()
    probe = Generator(settings.generator, settings.models_dir)  # for the prompt's token count only
    prompt = rag_prompt(probe, 1000)
    rates = []
    for name in ("promoted", "candidate"):
        model.set_adapter(name)
        rates.append(decode_rate(model, tokenizer, prompt, new_tokens))
    end = rss_mb()
    return (
        f"one base, two peft adapters: process {start:.0f} MB; base + one {one:.0f} MB (+{one - start:.0f}); + a "
        f"second {two:.0f} MB (+{two - one:.0f}); after both decoded {end:.0f} MB (+{end - start:.0f} in all); "
        f"decode unmerged {rates[0]:.1f} / {rates[1]:.1f} tok/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument(
        "--variant", choices=["merged", "peft"], help="run one variant here (else each in its own process)"
    )
    args = parser.parse_args()
    if args.variant == "merged":
        print(merged_copies(args.new_tokens))
    elif args.variant == "peft":
        print(peft_adapters(args.new_tokens))
    else:  # each in a fresh process: memory freed by one would be reused by the other
        for variant in ("merged", "peft"):
            command = [sys.executable, "-m", "benchmarks.second_adapter", "--variant", variant]
            done = subprocess.run([*command, "--new-tokens", str(args.new_tokens)], capture_output=True, text=True)
            print(done.stdout.strip() or done.stderr.strip()[-2000:])


if __name__ == "__main__":
    main()
