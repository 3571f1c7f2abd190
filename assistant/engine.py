"""The answering model in a serving engine (vLLM), over the OpenAI-compatible completions API.

The engine decodes many answers at once (continuous batching) and serves LoRA adapters by name; this process only
streams. Each request is the tuned prompt as a plain completion, greedy, cut at the house stop markers, with the
house-format rules as per-request data (`vllm_xargs.house_format`, read by `assistant.engine_format` inside the
engine: the same `QuoteConstraint` the in-process backend applies). The adapter is chosen per request by its served
name, its registry id; an engine that lacks it is asked to load it from the adapter's folder (vLLM's runtime LoRA
loading, `VLLM_ALLOW_RUNTIME_LORA_UPDATING`), so a promotion needs no restart. Which adapter may answer whom is
decided before the request, as in-process (`Answerer`: the adapter's data groups; `resolve_adapter`: its base model
and prompt template).

Failure is one clear line, never a hang: the client retries a request that could not reach the engine, then
`EngineError` names the URL and what to do; so do an adapter the engine cannot load and a request it rejects.
Closing the stream (Stop in the app, a closed tab, Ctrl-C) closes the HTTP response, and vLLM aborts the request.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Generator, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from assistant.answer_model import Usage
from assistant.errors import AssistantError, ConfigError
from assistant.prompt import STOP_MARKERS
from assistant.quote_constraint import ENGINE_ARG
from assistant.settings import EngineSettings, GeneratorSettings

if TYPE_CHECKING:
    from openai import OpenAI

    from assistant.adapters import AdapterRecord
    from assistant.quote_constraint import FormatRequest

START_HINT = "start it with `assistant serve-model`, or set generator.backend=in-process"


class EngineError(AssistantError):
    """The serving engine is down, unreachable, lacks the adapter, or refused the request."""


class EngineGenerator:
    """`AnswerModel` over a vLLM server. Thread-safe: the app's sessions share one."""

    def __init__(
        self, settings: GeneratorSettings, engine: EngineSettings, adapter: AdapterRecord | None = None
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.adapter = adapter
        self._ready = threading.Lock()
        self._served = False

    @property
    def model_id(self) -> str:
        return self.settings.model

    @property
    def adapter_id(self) -> str | None:
        return str(self.adapter.path) if self.adapter is not None else None

    @property
    def backend(self) -> str:
        return self.engine.url

    @property
    def served_name(self) -> str:
        """The model name a request asks for: the adapter's registry id, else the base model's served name."""
        return self.adapter.id if self.adapter is not None else self.engine.served_model

    @cached_property
    def client(self) -> OpenAI:
        from openai import OpenAI, Timeout

        timeout = Timeout(self.engine.read_timeout_s, connect=self.engine.connect_timeout_s)
        return OpenAI(
            base_url=self.engine.url,
            api_key=self.engine.api_key.get_secret_value() or "none",
            timeout=timeout,
            max_retries=self.engine.retries,
        )

    def load(self) -> None:
        """Reach the engine; make sure it serves the base model and, loading it at run time if need be, the
        adapter."""
        with self._ready:
            if self._served:
                return
            served = self.served_models()
            if self.served_name not in served:
                if self.engine.served_model not in served:  # no base to load the adapter on (a merged engine)
                    raise EngineError(
                        f"the engine at {self.engine.url} serves {sorted(served)}, neither {self.served_name} nor "
                        f"the base model {self.engine.served_model} (engine.served_model): restart `assistant "
                        f"serve-model`, which serves generator.model {self.settings.model} and the adapter the "
                        "registry names now, or set engine.served_model to the name it serves"
                    )
                if self.adapter is not None:
                    self.load_adapter(self.adapter)
            self._served = True

    def chat_prompt(self, messages: Sequence[dict[str, str]]) -> str:
        raise ConfigError(
            "generator.chat_template needs the in-process backend (the engine takes the plain prompt); set "
            "generator.backend=in-process or turn generator.chat_template off"
        )

    def _unreachable(self, exc: Exception) -> EngineError:
        return EngineError(f"the model engine at {self.engine.url} is not reachable ({exc}): {START_HINT}")

    def served_models(self) -> set[str]:
        """The names the engine serves (base model and adapters)."""
        from openai import APIConnectionError, APIStatusError

        try:
            return {model.id for model in self.client.models.list()}
        except APIConnectionError as exc:
            raise self._unreachable(exc) from exc
        except APIStatusError as exc:
            raise EngineError(
                f"the model engine at {self.engine.url} answered {exc.status_code}: {exc.message}"
            ) from exc

    def load_adapter(self, adapter: AdapterRecord) -> None:
        """Ask the engine to load `adapter` under its id (its folder must be readable by the engine)."""
        from openai import APIConnectionError, APIStatusError

        body = {"lora_name": adapter.id, "lora_path": str(adapter.path.resolve())}
        try:
            self.client.post("/load_lora_adapter", body=body, cast_to=str)
        except APIConnectionError as exc:
            raise self._unreachable(exc) from exc
        except APIStatusError as exc:
            if "already" in exc.message:  # loaded meanwhile by another process
                return
            raise EngineError(
                f"the engine at {self.engine.url} did not load adapter {adapter.id} from {adapter.path} "
                f"({exc.status_code}: {exc.message}); restart it with `assistant serve-model`, which serves the "
                "registry's adapters and allows loading more at run time"
            ) from exc

    def stream(
        self, prompt: str, *, max_new_tokens: int | None = None, format_request: FormatRequest | None = None
    ) -> Generator[str, None, Usage]:
        """Pieces of the answer as the engine sends them; returns the engine's token counts."""
        from openai import APIConnectionError, APIError, APIStatusError

        self.load()
        extra: dict[str, Any] = {}
        if format_request is not None and self.settings.constrain_quotes:
            request = dataclasses.replace(format_request, attribute_citations=self.settings.attribute_citations)
            extra["vllm_xargs"] = {ENGINE_ARG: json.dumps(request.to_json())}
        try:
            response = self.client.completions.create(
                model=self.served_name,
                prompt=prompt,
                max_tokens=max_new_tokens or self.settings.max_new_tokens,
                temperature=0.0,  # greedy: the same context gives the same answer
                stop=list(STOP_MARKERS),
                stream=True,
                stream_options={"include_usage": True},
                extra_body=extra or None,
            )
        except APIConnectionError as exc:
            raise self._unreachable(exc) from exc
        except APIStatusError as exc:
            if exc.status_code == 404:  # restarted without the adapter: the next question asks it to load it again
                with self._ready:
                    self._served = False
            raise EngineError(
                f"the engine at {self.engine.url} refused the answer request for {self.served_name} "
                f"({exc.status_code}: {exc.message})"
            ) from exc
        usage = Usage(0, 0)
        try:
            for chunk in response:
                if chunk.usage is not None:
                    usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                for choice in chunk.choices:
                    if choice.text:
                        yield choice.text
        except APIError as exc:
            raise EngineError(f"the engine at {self.engine.url} broke off the answer ({exc})") from exc
        finally:
            response.close()  # early: the engine sees the client go and aborts the request
        return usage
