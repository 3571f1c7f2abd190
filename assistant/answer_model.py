"""What the answer pipeline needs of the answering model, whichever backend runs it: the model inside this process
(`assistant.generator.Generator`, transformers) or a serving engine over the OpenAI-compatible API
(`assistant.engine.EngineGenerator`, vLLM). Both decode under the same house-format rules (`FormatRequest`)."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from assistant.quote_constraint import FormatRequest


@dataclass(frozen=True)
class Usage:
    """Tokens of one answer: the prompt as the model was fed it, and the completion."""

    prompt_tokens: int
    completion_tokens: int


class AnswerModel(Protocol):
    @property
    def model_id(self) -> str: ...

    @property
    def adapter_id(self) -> str | None: ...

    @property
    def backend(self) -> str:
        """`in-process`, or the engine's URL: traces and evaluations name where the answer was decoded."""
        ...

    def chat_prompt(self, messages: Sequence[dict[str, str]]) -> str:
        """`messages` through the base model's chat template, ending where the assistant's answer begins."""
        ...

    def load(self) -> None:
        """Be ready to answer (load the weights; or reach the engine and make sure it serves the adapter)."""
        ...

    def stream(
        self, prompt: str, *, max_new_tokens: int | None = None, format_request: FormatRequest | None = None
    ) -> Generator[str, None, Usage]:
        """Pieces of the answer as they are decoded ("" while waiting: the reader may stop); returns the usage.
        Closing it early stops the decoding."""
        ...
