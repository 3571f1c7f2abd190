"""The project's training step: the output layer runs only at the positions a loss is taken at.

Gemma 3 270M's output layer has 262,144 rows. TRL's fused LM head skips the masked (prompt) positions only where
Triton runs; on CPU it scores every position of the batch, prompt included, in chunks, and computes entropy and
accuracy on the way. Here the backbone runs once, the hidden states of the completion positions are picked out,
and only those go through the output layer into the cross-entropy: with ~50 answer tokens in ~500, about a tenth
of the output-layer work, forward and backward. `benchmarks/train.py` measures both on the same batches.
Not covered: MoE auxiliary losses, label smoothing, context/sequence parallelism (none is used here).
"""

from __future__ import annotations

from typing import Any

import torch
from trl import SFTTrainer  # type: ignore[attr-defined]


def completion_loss(model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> torch.Tensor:
    """Mean token cross-entropy over the positions whose next-token label is not -100."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    backbone = getattr(base, base.base_model_prefix)
    hidden = backbone(
        input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"), use_cache=False
    ).last_hidden_state
    labels = inputs["labels"][:, 1:]
    mask = labels != -100
    picked = hidden[:, :-1][mask]  # (answer tokens, hidden): the only rows the output layer sees
    logits = base.get_output_embeddings()(picked).float()
    cap = getattr(base.config.get_text_config(), "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    total = torch.nn.functional.cross_entropy(logits, labels[mask], reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else mask.sum()
    return total / torch.as_tensor(count, device=total.device).clamp(min=1)


class CompletionLossTrainer(SFTTrainer):
    """SFTTrainer whose loss projects only the answer positions through the output layer."""

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        loss = completion_loss(model, inputs, num_items_in_batch)
        return (loss, {"loss": loss}) if return_outputs else loss
