"""The serving engine for real: vLLM's CPU build, started once per test run on loopback by `assistant serve-model`'s
own command line, with the shipped adapter and the house-format logits processor. vLLM lives in a virtual
environment of its own (`.venv-vllm` in the checkout, made by `install_vllm` on first use: ~4 minutes and 3.5 GB,
kept between runs); the tests skip, saying so, only where it cannot be installed.

Checked: an answer end to end through the engine (cited, quotes verbatim, the same text as in-process decoding),
streaming and cancel (the engine counts the aborted request), the adapter by name, an adapter loaded at run time by
`tune promote`, the engine down (one clear line), an adapter never used for a principal lacking its groups, and
the adapter served merged into the base weights (`serve-model --merged`): the same answer, and a promotion that
names the restart it needs."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from assistant.access import Principal
from assistant.adapters import SHIPPED, AdapterRecord, adapters_dir, read_record
from assistant.answering import Answerer
from assistant.engine import EngineError, EngineGenerator
from assistant.generator import Generator
from assistant.quote_constraint import FormatRequest
from assistant.serve_model import (
    MERGED_FROM,
    install_vllm,
    prepare,
    start_engine,
    stop_engine,
    wait_until_serving,
)
from assistant.settings import EngineSettings, Settings
from evals.answers import answer_query
from evals.datasets import EvalQuery
from tests.conftest import run, runtime
from tests.test_tuning import CURATED_LINE
from tuning import registry
from ui.local_server import free_port

VLLM_VENV = Path(__file__).resolve().parent.parent / ".venv-vllm"  # gitignored; kept between runs
STARTUP_S = 420  # first start compiles CPU kernels; later ones take about a minute
DANA = Principal.of("dana", ["everyone"])
FLOATING = "How many floating holidays do I get each year?"


@dataclass
class Engine:
    settings: Settings  # the handbook index, answering through the engine
    process: subprocess.Popen[bytes]
    log: Path

    def metric(self, name: str, **labels: str) -> float:
        """A counter from the engine's Prometheus endpoint, summed over the series matching `labels`."""
        base = self.settings.engine.url.removesuffix("/v1")
        text = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total


def engine_settings(base: Settings, port: int, **engine: object) -> Settings:
    settings = EngineSettings(
        python=VLLM_VENV / "bin" / "python", port=port, url=f"http://127.0.0.1:{port}/v1", retries=0, **engine
    )
    generator = base.generator.model_copy(update={"backend": "engine", "device": "cpu"})
    return base.model_copy(update={"engine": settings, "generator": generator})


@pytest.fixture(scope="session")
def engine(handbook_index: Settings, bundled_models: Path) -> Iterator[Engine]:
    models = handbook_index.data_dir / "models"
    if not models.exists():
        models.symlink_to(bundled_models, target_is_directory=True)
    settings = engine_settings(handbook_index, free_port())
    if not (VLLM_VENV / "bin" / "python").exists():
        try:
            install_vllm(settings, gpu=False)
        except (subprocess.CalledProcessError, OSError) as exc:
            pytest.skip(f"vLLM's CPU build could not be installed here ({exc}): the engine tests need it")
    log = handbook_index.data_dir / "engine.log"
    process = start_engine(prepare(settings), log)
    try:
        wait_until_serving(settings.engine.url, process, log, STARTUP_S)
        yield Engine(settings, process, log)
    finally:
        stop_engine(process)


@pytest.fixture
def through_engine(engine: Engine) -> Iterator[Answerer]:
    with runtime(engine.settings) as components:
        yield components.answerer(log_questions=False)


def test_an_answer_through_the_engine_is_cited_verbatim_and_the_same_as_in_process(engine: Engine) -> None:
    with runtime(engine.settings) as components:
        assert components.generator.backend == engine.settings.engine.url
        answer = components.answerer(log_questions=False).ask(DANA, FLOATING)
    assert not answer.refused and answer.citations and answer.quotes
    assert answer.format_valid and not answer.unsupported_quotes  # every quote verbatim in its block
    assert answer.adapter == read_record(SHIPPED).id and answer.completion_tokens > 0 and answer.prompt_tokens > 400
    in_process = engine.settings.generator.model_copy(update={"backend": "in-process"})
    with runtime(engine.settings.model_copy(update={"generator": in_process})) as components:
        assert isinstance(components.generator, Generator)
        local = components.answerer(log_questions=False).ask(DANA, FLOATING)
    assert local.answer == answer.answer  # one definition of the format: the same greedy answer on both backends


def test_the_engine_applies_the_house_format_sent_with_the_request(engine: Engine) -> None:
    """The rules travel with each request: with the refusal not allowed and one block's sentence preferred, the
    engine can only answer citing that block and quoting that sentence."""
    generator = EngineGenerator(engine.settings.generator, engine.settings.engine, read_record(SHIPPED))
    blocks = ["Parking is in the north garage. Bikes go in the basement.", "Employees get two floating holidays."]
    prompt = "Question: Where do I park my bike?\nAnswer:"  # no house prompt: only the rules make it cite
    request = FormatRequest.of(blocks, "Where do I park my bike?", {1: {"Bikes go in the basement."}})
    text = "".join(generator.stream(prompt, format_request=request, max_new_tokens=96))
    quotes = re.findall(r'^\[(\d+)\] "(.*)"$', text, flags=re.M)
    assert re.search(r"\[1\]", text.splitlines()[0]) and quotes == [("1", "Bikes go in the basement.")], text


def test_a_reader_who_stops_makes_the_engine_abort_the_request(engine: Engine, through_engine: Answerer) -> None:
    """The stream is closed after its first piece: the engine ran the request and stopped it unfinished (vLLM
    counts finished requests only, by reason stop or length; an aborted one is not among them).

    A short answer can be decoded whole before the closed connection reaches the engine when the 2 cores are busy
    (the client and the engine share them), so up to three questions are tried: if closing never aborted, every
    one of them finishes and the test fails."""
    questions = ("What should I do if I lose my laptop?", "How do I reset my password?", FLOATING)
    finished_each = []
    for question in questions:
        finished = engine.metric("vllm:request_success_total")
        generated = engine.metric("vllm:generation_tokens_total")
        with through_engine.stream(DANA, question) as stream:
            assert any(piece for piece, _ in zip(stream, range(50), strict=False))  # some text has arrived
        deadline = time.monotonic() + 30
        while engine.metric("vllm:num_requests_running") > 0:
            assert time.monotonic() < deadline, "the engine is still decoding the closed request"
            time.sleep(0.2)
        assert engine.metric("vllm:generation_tokens_total") > generated  # it was decoding
        finished_each.append(engine.metric("vllm:request_success_total") - finished)
        if finished_each[-1] == 0:  # aborted: never finished
            return
    pytest.fail(f"every closed stream was decoded to its end (finished requests per question: {finished_each})")


def test_the_adapter_is_asked_for_by_name_and_an_unknown_one_is_a_clear_error(engine: Engine) -> None:
    shipped = read_record(SHIPPED)
    generator = EngineGenerator(engine.settings.generator, engine.settings.engine, shipped)
    assert generator.served_name == shipped.id and shipped.id in generator.served_models()
    missing = dataclasses.replace(shipped, id="no-such-adapter", path=engine.settings.data_dir / "no-such-adapter")
    with pytest.raises(EngineError, match="did not load adapter no-such-adapter"):
        EngineGenerator(engine.settings.generator, engine.settings.engine, missing).load()


def registered_copy(settings: Settings, adapter_id: str, **changes: object) -> AdapterRecord:
    """The shipped adapter's weights registered under a new id in `settings`' data directory (record version 2, with
    its training-data file), as `tune train` would leave it."""
    metrics = {"handbook": {**registry.GATES, "token_f1": 0.5}}
    return registry.register_copy(
        read_record(SHIPPED), adapters_dir(settings), adapter_id, CURATED_LINE, **{"metrics": metrics, **changes}
    )


def test_tune_promote_makes_the_running_engine_load_the_new_adapter(engine: Engine, tmp_path: Path) -> None:
    """A registered copy of the shipped adapter under a new id, promoted in another data directory that points at
    the same engine: the engine serves it at once, without a restart."""
    settings = engine.settings.model_copy(update={"data_dir": tmp_path})
    copy = registered_copy(settings, "handbook-copy-1")
    assert copy.id not in EngineGenerator(settings.generator, settings.engine).served_models()
    env = {"ASSISTANT_GENERATOR__BACKEND": "engine", "ASSISTANT_ENGINE__URL": settings.engine.url}
    promoted = run("tune", "promote", copy.id, data_dir=tmp_path, extra_env=env)
    assert promoted.returncode == 0, promoted.stderr
    assert f"serves {copy.id}" in promoted.stdout
    assert copy.id in EngineGenerator(settings.generator, settings.engine).served_models()


def test_the_engine_down_is_one_clear_line(handbook_index: Settings) -> None:
    """No engine on the port: the library raises one clear error, the CLI prints it as one line, an evaluation
    counts the question as refused and goes on."""
    down = engine_settings(handbook_index, free_port(), connect_timeout_s=1.0)
    generator = EngineGenerator(down.generator, down.engine, read_record(SHIPPED))
    started = time.monotonic()
    with pytest.raises(EngineError, match=r"is not reachable .*assistant serve-model"):
        "".join(generator.stream("Question: anything?\nAnswer:"))
    assert time.monotonic() - started < 30  # never a hang
    env = {"ASSISTANT_GENERATOR__BACKEND": "engine", "ASSISTANT_ENGINE__URL": down.engine.url}
    asked = run("ask", FLOATING, "--user", "dana", data_dir=handbook_index.data_dir, extra_env=env)
    assert asked.returncode == 1 and "Traceback" not in asked.stderr
    assert re.fullmatch(r"error: the model engine at \S+ is not reachable .*serve-model.*\n", asked.stderr, re.S)
    with runtime(down) as components:
        query = EvalQuery("q1", FLOATING, {"company/holidays.md": 1}, ("everyone",), key_facts=("two",))
        sample = answer_query(components.answerer(log_questions=False), query, should_refuse=False)
    assert sample.refused and sample.outcome == "refused-engine" and sample.correct is False


def test_an_adapter_is_never_used_for_a_principal_lacking_its_data_groups(engine: Engine, tmp_path: Path) -> None:
    hr_trained = registered_copy(engine.settings.model_copy(update={"data_dir": tmp_path}), "hr-1", data_groups=("hr",))
    generator = engine.settings.generator.model_copy(update={"adapter": hr_trained.path})
    requests = engine.metric("vllm:request_success_total")
    with runtime(engine.settings.model_copy(update={"generator": generator})) as components:
        answerer = components.answerer(log_questions=False)
        assert answerer.adapter is not None and answerer.adapter.id == "hr-1"
        answer = answerer.ask(DANA, FLOATING)
    assert answer.outcome == "refused-adapter" and answer.refused
    assert engine.metric("vllm:request_success_total") == requests  # the engine was never asked


def test_a_canary_is_a_second_lora_adapter_of_the_same_engine_and_rolls_back_at_once(
    engine: Engine, tmp_path: Path
) -> None:
    """A registered copy of the shipped adapter put in canary at 100%: the running engine loads it beside the base
    and the shipped adapter, a user is answered with it, and after the rollback with the shipped one again."""
    from tuning import rollout

    (tmp_path / "index").symlink_to(engine.settings.index_dir, target_is_directory=True)  # the same index, read
    (tmp_path / "models").symlink_to(engine.settings.models_dir, target_is_directory=True)
    settings = engine.settings.model_copy(update={"data_dir": tmp_path})
    copy = registered_copy(settings, "canary-1")
    with runtime(settings) as components:
        rollout.start(settings, copy.id, "canary", 1.0, "cli:test", "through the engine", components.store)
        assert copy.id in EngineGenerator(settings.generator, settings.engine).served_models()
        answer = components.answerer(principal=DANA).ask(DANA, FLOATING)
        assert answer.adapter == copy.id and not answer.refused
        rollout.rollback(settings, "cli:test", "done")
        assert components.answerer(principal=DANA).ask(DANA, FLOATING).adapter == read_record(SHIPPED).id


@pytest.mark.slow  # a second engine beside the first: minutes and gigabytes more on 2 cores (run with -m slow)
def test_the_adapter_merged_into_the_base_gives_the_same_answer_and_a_promotion_names_the_restart(
    engine: Engine, tmp_path: Path
) -> None:
    """A second engine, serving the shipped adapter merged into the base weights under the adapter's id (no LoRA):
    the same greedy answer as the LoRA engine; asked for an adapter it does not serve, it says to restart."""
    merged = engine_settings(engine.settings, free_port(), merge_adapter=True)
    command = prepare(merged)
    shipped = read_record(SHIPPED)
    assert "--enable-lora" not in command.argv and command.argv[command.argv.index("--served-model-name") + 1] == (
        shipped.id
    )
    folder = Path(command.argv[command.argv.index("--model") + 1])
    assert (folder / MERGED_FROM).is_file() and prepare(merged).argv == command.argv  # merged once, then reused
    log = tmp_path / "merged-engine.log"
    process = start_engine(command, log)
    try:
        wait_until_serving(merged.engine.url, process, log, STARTUP_S)
        with runtime(merged) as components:
            answer = components.answerer(log_questions=False).ask(DANA, FLOATING)
        with runtime(engine.settings) as components:
            assert components.answerer(log_questions=False).ask(DANA, FLOATING).answer == answer.answer
        copy = registered_copy(merged.model_copy(update={"data_dir": tmp_path}), "handbook-copy-2")
        with pytest.raises(EngineError, match=r"neither handbook-copy-2 nor the base model .*restart `assistant serve"):
            EngineGenerator(merged.generator, merged.engine, copy).load()
        from assistant.errors import ConfigError
        from tuning.rollout import check_engine

        with pytest.raises(ConfigError, match=r"cannot serve handbook-copy-2 beside .*need the engine in LoRA mode"):
            check_engine(merged, copy)  # a shadow or canary is refused with one line
    finally:
        stop_engine(process)
