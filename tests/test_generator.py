"""The generator with a tiny Gemma 3 built with `from_config` (real transformers and peft, CPU), and, marked slow,
the real bundled Gemma 3 270M converted from its GGUF."""

from __future__ import annotations

from pathlib import Path

import pytest

import assistant.generator as generator_module
from assistant.errors import ConfigError
from assistant.generator import Generator, resolve_base_model
from assistant.prompt import (
    END_OF_ANSWER,
    FEW_SHOT,
    INSTRUCTION,
    TUNED_INSTRUCTION,
    ContextBlock,
    Turn,
    chat_messages,
    render_prompt,
    render_training_example,
    render_tuned_prompt,
)
from assistant.settings import GeneratorSettings, load_settings


def test_prompt_numbers_blocks_and_bounds_history() -> None:
    blocks = [ContextBlock("Holidays", "2026", "Ten holidays."), ContextBlock("Leave", None, "20 weeks.")]
    history = [Turn(f"q{i}", f"a{i}") for i in range(5)]
    prompt = render_prompt("How many?", blocks, history, max_history=2)
    assert "[1] Holidays - 2026\nTen holidays." in prompt and "[2] Leave\n20 weeks." in prompt
    assert "Q: q3" in prompt and "Q: q4" in prompt and "Q: q2" not in prompt
    assert prompt.endswith("Question: How many?\nAnswer:")
    training_prompt, completion = render_training_example("How many?", blocks, "Ten [1].", history)
    assert training_prompt == render_tuned_prompt("How many?", blocks, history)  # what an adapter is served
    assert training_prompt == render_prompt("How many?", blocks, history, instruction=TUNED_INSTRUCTION)
    assert completion == f" Ten [1].\n{END_OF_ANSWER}"
    with_examples = render_prompt("How many?", blocks, examples=FEW_SHOT)
    assert with_examples.count("Question:") == 4 and with_examples.count(END_OF_ANSWER) == 3
    assert with_examples.endswith("Question: How many?\nAnswer:")
    assert with_examples.index("[1] Holidays - 2026") > with_examples.rindex(END_OF_ANSWER)  # examples first


def test_chat_messages_carry_the_plain_prompts_parts_as_turns() -> None:
    blocks = [ContextBlock("Holidays", "2026", "Ten holidays.")]
    messages = chat_messages("How many?", blocks, [Turn("Before?", "Then [1].")], examples=FEW_SHOT[:1])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"] == INSTRUCTION and messages[2]["content"] == FEW_SHOT[0].answer
    assert "[1] Holidays - 2026\nTen holidays." in messages[-1]["content"]
    assert "Q: Before?" in messages[-1]["content"] and messages[-1]["content"].endswith("Question: How many?")


def test_chat_prompt_goes_through_the_models_template(tiny_model: Path, tmp_path: Path) -> None:
    generator = Generator(GeneratorSettings(model=str(tiny_model), device="cpu"), tmp_path)
    messages = chat_messages("How many?", [ContextBlock("Holidays", None, "Ten holidays.")])
    with pytest.raises(ConfigError, match="has no chat template"):
        generator.chat_prompt(messages)  # the tiny model's tokenizer has none: said, not guessed
    _, tokenizer = generator._loaded
    tokenizer.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    prompt = generator.chat_prompt(messages)
    assert prompt.startswith(f"<system>{INSTRUCTION}</system><user>") and prompt.endswith("How many?</user><assistant>")


def test_the_engine_refuses_a_chat_template_with_one_line() -> None:
    from assistant.engine import EngineGenerator
    from assistant.settings import EngineSettings

    with pytest.raises(ConfigError, match="needs the in-process backend"):
        EngineGenerator(GeneratorSettings(), EngineSettings()).chat_prompt(chat_messages("Q?", []))
    with pytest.raises(ConfigError, match=r"chat_template needs generator\.backend=in-process"):
        load_settings(generator={"chat_template": True, "backend": "engine"})  # said when the settings load


def test_a_gguf_file_is_converted_once_into_a_folder_named_by_its_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    converted: list[Path] = []

    def convert(gguf: Path, target: Path, source: dict[str, str]) -> None:  # the real one: the bundled test below
        converted.append(target)
        target.mkdir(parents=True)
        (target / "config.json").write_text("{}")

    monkeypatch.setattr(generator_module, "convert_gguf", convert)
    gguf = tmp_path / "reader.gguf"
    gguf.write_bytes(b"GGUF weights v1")
    first = resolve_base_model(str(gguf), tmp_path / "models")
    assert resolve_base_model(str(gguf), tmp_path / "models") == first and len(converted) == 1  # once
    assert Path(first).name.startswith("reader-") and Path(first).parent == tmp_path / "models"
    gguf.write_bytes(b"GGUF weights v2")  # changed weights are converted again, never served stale
    assert resolve_base_model(str(gguf), tmp_path / "models") != first and len(converted) == 2
    with pytest.raises(ConfigError, match="no such file"):
        resolve_base_model(str(tmp_path / "missing.gguf"), tmp_path / "models")


def test_generate_counts_tokens_and_streams_the_same_text(tiny_model: Path, tmp_path: Path) -> None:
    generator = Generator(GeneratorSettings(model=str(tiny_model), device="cpu", max_new_tokens=12), tmp_path)
    prompt = render_prompt("What is the leave?", [ContextBlock("Leave", None, "20 weeks.")])
    result = generator.generate(prompt)
    assert result.prompt_tokens > 20 and 0 < result.completion_tokens <= 12
    streamed = "".join(generator.stream(prompt))
    assert streamed.strip() == result.text.strip()
    assert generator.model_id == str(tiny_model) and generator.adapter_id is None


def test_shortlist_head_keeps_the_greedy_token_and_exact_logits() -> None:
    import torch

    from assistant.shortlist_head import ShortlistHead

    torch.manual_seed(1)
    projection = torch.nn.Linear(64, 5000, bias=False)
    hidden = torch.randn(3, 7, 64)
    full = projection(hidden)
    fast = ShortlistHead(projection, size=16)(hidden)
    assert fast.shape == full.shape
    assert torch.equal(fast.argmax(-1), full.argmax(-1))
    kept = torch.isfinite(fast)
    assert (kept.sum(-1) == 16).all()  # everything outside the shortlist is -inf
    assert torch.allclose(fast[kept], full[kept], atol=1e-5)  # the shortlist is scored in full precision
    with pytest.raises(ValueError, match="without bias"):
        ShortlistHead(torch.nn.Linear(4, 8))
    assert ShortlistHead(torch.nn.Linear(4, 8, bias=False), size=64).size == 8  # never more than the vocabulary


def test_shortlist_head_is_skipped_for_an_output_layer_it_cannot_replace() -> None:
    import torch

    from assistant.shortlist_head import install_shortlist_head

    class WithBias(torch.nn.Module):
        head = torch.nn.Linear(4, 8)

        def get_output_embeddings(self) -> torch.nn.Module:
            return self.head

        def set_output_embeddings(self, module: torch.nn.Module) -> None:
            raise AssertionError("must not be replaced")

    assert install_shortlist_head(WithBias(), 64) is False


def test_shortlist_head_works_without_quantized_tensors(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from assistant.shortlist_head import ShortlistHead

    def removed(*_: object, **__: object) -> None:
        raise RuntimeError("quantized tensors were removed from this torch")

    monkeypatch.setattr(torch, "quantize_per_channel", removed)
    torch.manual_seed(2)
    projection = torch.nn.Linear(64, 5000, bias=False)
    hidden = torch.randn(4, 64)
    assert torch.equal(ShortlistHead(projection, size=16)(hidden).argmax(-1), projection(hidden).argmax(-1))


def test_shortlist_head_generates_the_same_text_as_the_plain_head(tiny_model: Path, tmp_path: Path) -> None:
    prompt = render_prompt("What is the leave?", [ContextBlock("Leave", None, "20 weeks of paid leave.")])
    texts = {}
    for shortlist in (None, 8):
        settings = GeneratorSettings(model=str(tiny_model), device="cpu", max_new_tokens=24, shortlist_head=shortlist)
        generator = Generator(settings, tmp_path)
        head = generator._loaded[0].get_output_embeddings()
        assert (type(head).__name__ == "ShortlistHead") == (shortlist is not None)
        texts[shortlist] = generator.generate(prompt, exact_length=True).token_ids
    assert texts[None] == texts[8] and len(texts[None]) == 24  # every token, not only the text before a stop


def test_adapter_is_loaded_merged_and_recorded(tiny_model: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM", init_lora_weights=False)
    get_peft_model(base, lora).save_pretrained(str(tmp_path / "adapter"))  # random B: the adapter changes outputs
    prompt = render_prompt("What is the leave?", [ContextBlock("Leave", None, "20 weeks of paid leave.")])
    tokens = {}
    for adapter in (None, tmp_path / "adapter"):
        settings = GeneratorSettings(model=str(tiny_model), adapter=adapter, device="cpu", max_new_tokens=16)
        generator = Generator(settings, tmp_path)
        tokens[adapter] = generator.generate(prompt, exact_length=True).token_ids
    assert tokens[None] != tokens[tmp_path / "adapter"]
    assert generator.adapter_id == str(tmp_path / "adapter")
    assert not type(generator._loaded[0]).__name__.startswith("Peft")  # merged into the weights for serving

    import torch
    from peft import PeftModel

    unmerged = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(str(tiny_model)), str(tmp_path / "adapter")
    )
    inputs = generator._inputs(prompt)
    with torch.inference_mode():
        output = unmerged.generate(**inputs, max_new_tokens=16, min_new_tokens=16, do_sample=False)
    assert tuple(int(t) for t in output[0, inputs["input_ids"].shape[1] :]) == tokens[tmp_path / "adapter"]


def test_a_reader_that_stops_streaming_stops_the_decoding_thread(tiny_model: Path, tmp_path: Path) -> None:
    import threading

    settings = GeneratorSettings(model=str(tiny_model), device="cpu", max_new_tokens=4000)
    generator = Generator(settings, tmp_path)
    generator.load()
    before = threading.active_count()
    stream = generator.stream(render_prompt("What is the leave?", [ContextBlock("Leave", None, "20 weeks.")]))
    next(stream)
    assert threading.active_count() == before + 1
    stream.close()  # returns once the worker has stopped, not after 4,000 tokens
    assert threading.active_count() == before


def test_missing_adapter_directory_is_a_clear_error(tiny_model: Path, tmp_path: Path) -> None:
    from assistant.errors import ConfigError

    settings = GeneratorSettings(model=str(tiny_model), adapter=tmp_path / "nope", device="cpu")
    with pytest.raises(ConfigError, match="not a peft adapter directory"):
        Generator(settings, tmp_path).generate("x")


def test_four_bit_needs_cuda(tiny_model: Path, tmp_path: Path) -> None:
    import torch

    from assistant.errors import ConfigError

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        Generator(GeneratorSettings(model=str(tiny_model), load_in_4bit=True), tmp_path).generate("x")


@pytest.mark.slow
def test_bundled_gemma_is_converted_once_and_answers(tmp_path: Path) -> None:
    models = tmp_path / "models"
    path = resolve_base_model(load_settings().generator.model, models)
    assert (Path(path) / "config.json").exists() and any(Path(path).glob("*.safetensors"))
    assert (Path(path) / "source.json").exists()  # which GGUF it came from
    generator = Generator(GeneratorSettings(device="cpu", max_new_tokens=16), models)
    result = generator.generate("The capital of France is")
    assert result.completion_tokens > 0 and result.text.strip()
    plain = Generator(GeneratorSettings(device="cpu", max_new_tokens=16, shortlist_head=None), models)
    assert plain.generate("The capital of France is").text == result.text  # the fast CPU head picks the same tokens


@pytest.mark.parametrize("slots", [1, 2])
def test_concurrent_sessions_take_turns_at_the_model(tiny_model: Path, tmp_path: Path, slots: int) -> None:
    import threading
    import time

    settings = GeneratorSettings(model=str(tiny_model), device="cpu", max_new_tokens=6, concurrent_generations=slots)
    generator = Generator(settings, tmp_path)
    model, _ = generator._loaded
    original, lock = model.generate, threading.Lock()
    active, peak = 0, 0

    def counting(*args: object, **kwargs: object) -> object:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        try:
            time.sleep(0.2)  # long enough for every thread to arrive while one decodes
            return original(*args, **kwargs)
        finally:
            with lock:
                active -= 1

    model.generate = counting
    prompt = render_prompt("What is the leave?", [ContextBlock("Leave", None, "20 weeks.")])
    answers: list[str] = []
    threads = [threading.Thread(target=lambda: answers.append("".join(generator.stream(prompt)))) for _ in range(4)]
    for thread in threads:
        thread.start()
    generator.generate(prompt)
    for thread in threads:
        thread.join()
    assert len(answers) == 4 and peak == slots


def test_a_failure_while_decoding_reaches_the_reader(tiny_model: Path, tmp_path: Path) -> None:
    generator = Generator(GeneratorSettings(model=str(tiny_model), device="cpu", max_new_tokens=6), tmp_path)
    model, _ = generator._loaded

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("out of memory")

    model.generate = broken
    with pytest.raises(RuntimeError, match="out of memory"):  # not a reader waiting for pieces forever
        "".join(generator.stream(render_prompt("What is the leave?", [ContextBlock("Leave", None, "20 weeks.")])))
    assert generator._slots.acquire(blocking=False)  # its turn was given back


def test_a_reader_waiting_for_its_turn_gets_heartbeats_and_leaves_without_decoding(
    tiny_model: Path, tmp_path: Path
) -> None:
    generator = Generator(GeneratorSettings(model=str(tiny_model), device="cpu", max_new_tokens=6), tmp_path)
    model, _ = generator._loaded
    calls: list[object] = []
    model.generate = lambda *args, **kwargs: calls.append(kwargs)
    assert generator._slots.acquire()  # another session is decoding
    stream = generator.stream(render_prompt("What is the leave?", [ContextBlock("Leave", None, "20 weeks.")]))
    assert next(stream) == ""  # a heartbeat, not a reader blocked until the other answer ends
    stream.close()  # the reader leaves (a stopped Streamlit run)
    generator._slots.release()
    assert calls == []  # its turn never came to use: nothing was decoded


def test_loading_an_adapter_shows_no_future_warning(tiny_model: Path, tmp_path: Path) -> None:
    """`assistant ask` printed peft's use of a deprecated transformers alias before every answer."""
    import warnings

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    get_peft_model(base, lora).save_pretrained(str(tmp_path / "adapter"))
    settings = GeneratorSettings(model=str(tiny_model), adapter=tmp_path / "adapter", device="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Generator(settings, tmp_path).load()
    assert not [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]
