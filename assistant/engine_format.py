"""The house format inside vLLM: a logits-processor plugin that applies `assistant.quote_constraint` per request.

The engine is started with `--logits-processors assistant.engine_format:HouseFormatLogitsProcessor`
(`assistant serve-model` does it). A completion request that carries `vllm_xargs: {"house_format": "<JSON>"}` (a
`FormatRequest`: the shown blocks, the question, the evidence scorer's best sentences, whether the model may refuse)
is decoded under exactly the rules the in-process backend applies: the same `QuoteConstraint`, built on the same
tokenizer, reading the same text decoded from the tokens so far. One definition of the format, no second copy.
A request without it is decoded freely.

This module runs inside vLLM's own virtual environment (its pinned torch), where only the standard library,
vLLM, transformers and the project's pure-Python format modules are imported; the rest of the project is not.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

from assistant.quote_constraint import ENGINE_ARG, FormatRequest, QuoteConstraint

if TYPE_CHECKING:
    from collections.abc import Callable

    import torch
    from vllm import SamplingParams
    from vllm.config import VllmConfig


class HouseFormatLogitsProcessor(AdapterLogitsProcessor):  # type: ignore[misc]  # vLLM: not in this venv
    """Per-request house-format constraint (batch rows are handled one by one by vLLM's adapter class)."""

    def __init__(self, vllm_config: VllmConfig, device: torch.device, is_pin_memory: bool) -> None:
        super().__init__(vllm_config, device, is_pin_memory)
        from transformers import AutoTokenizer

        self.tokenizer: Any = AutoTokenizer.from_pretrained(vllm_config.model_config.tokenizer)

    @classmethod
    def validate_params(cls, sampling_params: SamplingParams) -> None:
        """A malformed format request is the client's error (HTTP 400), not a crash inside the engine."""
        raw = (sampling_params.extra_args or {}).get(ENGINE_ARG)
        if raw is not None:
            try:
                FormatRequest.from_json(json.loads(raw))
            except (TypeError, ValueError, KeyError) as exc:
                raise ValueError(f"vllm_xargs.{ENGINE_ARG}: not a house-format request ({exc})") from exc

    def is_argmax_invariant(self) -> bool:
        return False  # it removes tokens: greedy decoding picks differently

    def new_req_logits_processor(
        self, params: SamplingParams
    ) -> Callable[[list[int], torch.Tensor], torch.Tensor] | None:
        raw = (params.extra_args or {}).get(ENGINE_ARG)
        if raw is None:
            return None
        request = FormatRequest.from_json(json.loads(raw))
        constraint = QuoteConstraint.for_request(self.tokenizer, request, prompt_length=0)

        def apply(output_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
            return constraint.mask(constraint.decoded(output_ids), logits.unsqueeze(0)).squeeze(0)

        return apply
