"""Training cost on this machine: seconds per optimiser step and training tokens/s for TRL's SFTTrainer as it
comes, for SFTTrainer with the recipe's settings, and for the project's training step, on the same batches of the
built handbook data. Prints figures; asserts nothing.

    python -m benchmarks.train [--recipe tuning/recipes/handbook-cpu.yaml] [--steps 4] [--json OUT]

Needs `assistant tune build-data --recipe ...` first (it reads the recipe's train.jsonl). Variants:
- trl-defaults: SFTTrainer with SFTConfig's defaults where the recipe does not set them (gradient checkpointing
  on, random batches); its fused LM head scores every position on CPU (it compacts to the loss positions only
  where Triton runs);
- trl-recipe: SFTTrainer with the recipe's settings (no checkpointing, length-grouped batches);
- project: the same settings with the project's step (`tuning/completion_loss.py`): only the answer positions go
  through the 262k-row output layer. This is what `tune train` runs.
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

from assistant.generator import pick_device, resolve_base_model
from assistant.recipe import load_recipe
from assistant.settings import CHECKOUT, load_settings
from tuning.provenance import IndexGroups, SourcePolicy, read_example_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=CHECKOUT / "tuning/recipes/handbook-cpu.yaml")
    parser.add_argument("--steps", type=int, default=4, help="Timed optimiser steps per variant (after one warm-up).")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = load_settings()
    recipe = load_recipe(args.recipe)
    policy = SourcePolicy(IndexGroups.of(settings), frozenset(recipe.data.allowed_groups))
    rows = read_example_file(settings.data_dir / "tuning" / recipe.name / "train.jsonl", policy).rows
    batch = recipe.train.batch_size * recipe.train.gradient_accumulation
    rows = rows[: batch * (args.steps + 1)]
    base = resolve_base_model(recipe.base_model, settings.models_dir)
    device = pick_device("auto")
    figures: dict[str, Any] = {"device": device, "examples_per_step": batch, "timed_steps": args.steps}
    for variant in ("trl-defaults", "trl-recipe", "project"):
        figures[variant] = measure(variant, recipe, rows, base, device)
        print(variant, json.dumps(figures[variant]), flush=True)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


def measure(variant: str, recipe: Any, rows: list[dict[str, str]], base: str, device: str) -> dict[str, float]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

    from tuning.completion_loss import CompletionLossTrainer

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    cfg = recipe.train
    options: dict[str, Any] = {
        "per_device_train_batch_size": cfg.batch_size,
        "gradient_accumulation_steps": cfg.gradient_accumulation,
        "learning_rate": cfg.learning_rate,
        "max_length": cfg.max_length,
        "max_steps": len(rows) // (cfg.batch_size * cfg.gradient_accumulation),
        "use_cpu": device == "cpu",
        "report_to": "none",
        "disable_tqdm": True,
        "save_strategy": "no",
        "logging_steps": 1000,
        "include_num_input_tokens_seen": True,
        "seed": cfg.seed,
    }
    if variant != "trl-defaults":
        options["gradient_checkpointing"] = cfg.gradient_checkpointing
        options["train_sampling_strategy"] = "group_by_length" if cfg.group_by_length else "random"
    steps: list[tuple[float, int]] = []

    class Clock(TrainerCallback):
        started = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            self.started = time.perf_counter()
            self.tokens = int(state.num_input_tokens_seen)

        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            steps.append((time.perf_counter() - self.started, int(state.num_input_tokens_seen) - self.tokens))

    with tempfile.TemporaryDirectory() as scratch:
        trainer_class = CompletionLossTrainer if variant == "project" else SFTTrainer
        trainer = trainer_class(
            model=model,
            args=SFTConfig(output_dir=scratch, **options),
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=LoraConfig(
                r=recipe.lora.r,
                lora_alpha=recipe.lora.alpha,
                target_modules=list(recipe.lora.target_modules),
                task_type="CAUSAL_LM",
            ),
            callbacks=[Clock()],
        )
        trainer.train()
    timed = steps[1:]  # the first step pays for warm-up
    seconds = [s for s, _ in timed]
    return {
        "seconds_per_step": round(statistics.fmean(seconds), 2),
        "tokens_per_second": round(sum(t for _, t in timed) / sum(seconds), 1),
    }


if __name__ == "__main__":
    main()
