"""`assistant tune train`: a LoRA adapter trained with TRL's SFTTrainer and peft, resumable, on CPU or GPU.

- Loss on the completion (answer) tokens only: TRL's prompt/completion datasets mask the prompt, and the project's
  step (`completion_loss.py`) projects only those positions through the 262k-row output layer.
- Batches of similar length (less padding); no gradient checkpointing on CPU (it recomputes every activation).
- On CUDA with `load_in_4bit`: QLoRA (NF4 base weights, bf16 compute); otherwise fp32 on CPU.
- Checkpoints every `save_steps`; a run started again with the same output folder resumes from the last complete
  one (a checkpoint cut short by a kill is skipped), only when its data files are the bytes the checkpoints were
  trained on (recorded in `checkpoints/data.json`): the record of the adapter names the data of every step.
- Examples longer than `max_length` tokens are skipped and counted, never cut.
- Each data file is read once: the rows trained on, the sha256 of the bytes read and the groups of the documents
  the rows name come from those bytes; a line whose documents are outside `data.allowed_groups` (read from the
  index now) stops the run before the model loads (`tuning/provenance.py`).
The adapter is written with its record (`tuning/registry.py`), which takes its data hash and groups from here.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import ConfigError
from assistant.generator import pick_device, resolve_base_model
from assistant.progress import NO_PROGRESS, Progress
from assistant.recipe import Recipe
from tuning.provenance import TRAIN, VALIDATION, SourcePolicy, TrainingData, read_example_file
from tuning.scrub import Scrub

if TYPE_CHECKING:
    from transformers import TrainerCallback

CHECKPOINTS = "checkpoints"
CHECKPOINT_DATA = "data.json"  # in CHECKPOINTS: sha256 of the data files the checkpoints were trained on


@dataclass(frozen=True)
class TrainResult:
    adapter_dir: Path
    steps: int
    seconds: float
    train_loss: float | None
    eval_loss: float | None
    skipped_too_long: int
    examples: int
    resumed_from: str | None
    device: str
    data: TrainingData  # what it trained on: the bytes read, their hashes and their documents' groups
    scans: dict[str, Any]  # file name -> the scan report that vouched for it (`tuning/scrub.py`)


def read_training_data(data_dir: Path, policy: SourcePolicy) -> TrainingData:
    """`data_dir/{train,validation}.jsonl`, each line's sources checked against `policy`."""
    return TrainingData(read_example_file(data_dir / TRAIN, policy), read_example_file(data_dir / VALIDATION, policy))


def train(
    recipe: Recipe,
    data_dir: Path,
    work_dir: Path,
    models_dir: Path,
    *,
    policy: SourcePolicy,
    scrub: Scrub,
    device_setting: str = "auto",
    progress: Progress = NO_PROGRESS,
) -> TrainResult:
    """Train on `data_dir/{train,validation}.jsonl` (lines `policy` allows, each file vouched for by a current scan
    report under `scrub` and scanned again here); checkpoints and the final adapter go under `work_dir`."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig  # type: ignore[attr-defined]

    from tuning.completion_loss import CompletionLossTrainer

    started = time.perf_counter()
    device = pick_device(device_setting)
    cfg = recipe.train
    if cfg.load_in_4bit and not device.startswith("cuda"):
        raise ConfigError("train.load_in_4bit (QLoRA) needs a CUDA device; use tuning/recipes/handbook-cpu.yaml here")
    data = read_training_data(data_dir, policy)  # refused lines stop the run before any model loads
    scans = {f.name: scrub.verify(data_dir / f.name, f.raw).to_json() for f in data.files}  # the same bytes
    base = resolve_base_model(recipe.base_model, models_dir)
    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.eos_token is None:  # a tokenizer without one (tests' tiny models) ends examples with its separator
        tokenizer.eos_token = tokenizer.sep_token or tokenizer.pad_token
    train_rows, skipped = _fitting(data.train.rows, tokenizer, cfg.max_length)
    eval_rows, _ = _fitting(data.validation.rows, tokenizer, cfg.max_length)
    if not train_rows:
        raise ConfigError(f"{data_dir / TRAIN} holds no example within train.max_length={cfg.max_length}")
    checkpoints = work_dir / CHECKPOINTS
    resume = last_complete_checkpoint(checkpoints)
    record_checkpoint_data(checkpoints, resume, data)

    model = AutoModelForCausalLM.from_pretrained(base, **_load_kwargs(recipe, device))
    args = SFTConfig(
        output_dir=str(checkpoints),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # a float below 1 is a share of the steps
        weight_decay=cfg.weight_decay,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        max_length=cfg.max_length,
        completion_only_loss=True,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        gradient_checkpointing=cfg.gradient_checkpointing,
        bf16=cfg.bf16 and device.startswith("cuda"),
        use_cpu=device == "cpu",
        eval_strategy="steps" if eval_rows else "no",
        eval_steps=cfg.eval_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=2,
        logging_steps=cfg.logging_steps,
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to="none",
        disable_tqdm=True,  # progress goes through the caller's Progress
        dataloader_num_workers=0,
        prediction_loss_only=True,
    )
    lora = LoraConfig(
        r=recipe.lora.r,
        lora_alpha=recipe.lora.alpha,
        lora_dropout=recipe.lora.dropout,
        target_modules=list(recipe.lora.target_modules),
        task_type="CAUSAL_LM",
    )
    trainer = CompletionLossTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=[_progress_callback(progress)],
    )
    torch.manual_seed(cfg.seed)
    output = trainer.train(resume_from_checkpoint=resume)
    eval_loss = _final_eval_loss(trainer) if eval_rows else None
    adapter_dir = work_dir / "adapter"
    trainer.save_model(str(adapter_dir))
    return TrainResult(
        adapter_dir=adapter_dir,
        steps=int(trainer.state.global_step),
        seconds=time.perf_counter() - started,
        train_loss=float(output.training_loss) if output.training_loss is not None else None,
        eval_loss=float(eval_loss) if eval_loss is not None else None,
        skipped_too_long=skipped,
        examples=len(train_rows),
        resumed_from=resume,
        device=device,
        data=data,
        scans=scans,
    )


def record_checkpoint_data(checkpoints: Path, resume: str | None, data: TrainingData) -> None:
    """A fresh run records the hashes of its data files next to its checkpoints; a resumed run must read the same
    bytes, or its adapter's record would not describe the steps trained before the checkpoint."""
    hashes = {f.name: f.sha256 for f in data.files}
    path = checkpoints / CHECKPOINT_DATA
    if resume is None:
        checkpoints.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(hashes, indent=1) + "\n", encoding="utf-8")
        return
    recorded = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    if recorded != hashes:
        raise ConfigError(
            f"{resume} was trained on other data than the files now ({path} does not match them): "
            f"restore those files, or delete {checkpoints} to train from the start"
        )


def _final_eval_loss(trainer: Any) -> float:
    """Validation loss of the final weights: the one logged at the last step when the schedule just evaluated
    there (evaluating again would repeat minutes of CPU work), else a fresh evaluation."""
    step = trainer.state.global_step
    logged = [e["eval_loss"] for e in trainer.state.log_history if "eval_loss" in e and e.get("step") == step]
    return float(logged[-1]) if logged else float(trainer.evaluate()["eval_loss"])


def last_complete_checkpoint(folder: Path) -> str | None:
    """The newest checkpoint that was written to the end: the trainer writes trainer_state.json last, so a run
    killed while saving leaves a folder without it, which is skipped (resuming from it would fail)."""
    if not folder.is_dir():
        return None
    complete = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    return str(max(complete, key=lambda p: int(p.name.split("-")[-1]))) if complete else None


def _fitting(rows: list[dict[str, str]], tokenizer: Any, max_length: int) -> tuple[list[dict[str, str]], int]:
    """The examples that fit `max_length` tokens (prompt + completion + EOS), and how many did not."""
    kept = [r for r in rows if len(tokenizer(r["prompt"] + r["completion"])["input_ids"]) + 1 <= max_length]
    return kept, len(rows) - len(kept)


def _load_kwargs(recipe: Recipe, device: str) -> dict[str, Any]:
    import torch

    if not device.startswith("cuda"):
        return {"dtype": torch.float32}
    kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if recipe.train.bf16 else torch.float32, "device_map": device}
    if recipe.train.load_in_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(  # type: ignore[no-untyped-call]
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16,
            bnb_4bit_use_double_quant=True,
        )
    return kwargs


def _progress_callback(progress: Progress) -> TrainerCallback:
    from transformers import TrainerCallback

    class ReportProgress(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            progress.start("training", int(state.max_steps))
            if state.global_step:
                progress.advance("training", int(state.global_step))

        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            progress.advance("training")

        def on_train_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            progress.finish("training")

    return ReportProgress()
