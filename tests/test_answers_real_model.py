"""End to end with the real bundled Gemma 3 270M on the sample handbook: slow (converts the GGUF once, ~50 s, then
a few answers on CPU). Run with `pytest -m slow`. The base model's answers are not judged for correctness here
(the tuning issue's evaluation does that); what must hold for any model is checked: refusals without generation,
sources only from the asker's groups, citations only to retrieved blocks, streaming, and the trace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from assistant.access import Principal
from assistant.answering import NOT_CONFIDENT, Answer, Answerer
from assistant.generator import Generator
from assistant.settings import GeneratorSettings, Settings, TracingSettings
from assistant.tracing import Tracer
from tests.conftest import Captured, runtime

pytestmark = pytest.mark.slow

USERS = {
    "dana": Principal.of("dana", ["everyone"]),
    "carlos": Principal.of("carlos", ["everyone", "hr", "hr-compensation"]),
    "alice": Principal.of("alice", ["everyone", "engineering"]),
}


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Generator:
    return Generator(GeneratorSettings(device="cpu", max_new_tokens=48), tmp_path_factory.mktemp("models"))


@pytest.fixture
def answerer(handbook_index: Settings, bundled: Generator, captured: Captured) -> Iterator[Answerer]:
    with runtime(handbook_index, generator=bundled, tracer=Tracer(TracingSettings(), captured.client)) as components:
        yield components.answerer()


@pytest.mark.parametrize(
    ("user", "question"),
    [
        ("dana", "How many floating holidays do I get each year?"),
        ("alice", "When does the on-call shift hand over and how much is the on-call stipend?"),
        ("carlos", "What is the pay range for a Senior Engineer (E3) in Boston?"),
    ],
)
def test_real_model_answers_only_from_readable_sources(answerer: Answerer, user: str, question: str) -> None:
    principal = USERS[user]
    stream = answerer.stream(principal, question)
    streamed = "".join(stream)
    answer = stream.answer
    assert isinstance(answer, Answer) and not answer.refused
    assert streamed.strip() and answer.answer.strip()
    assert answer.completion_tokens > 0 and answer.model == "bundled:gemma-3-270m"
    assert all(set(c.groups) & principal.groups for c in answer.retrieved)
    assert {c.doc_id for c in answer.citations} <= {c.doc_id for c in answer.retrieved}
    assert answer.trace_id is not None


def test_real_model_is_never_reached_for_a_refusal(answerer: Answerer, captured: Captured) -> None:
    answer = answerer.ask(USERS["dana"], "What is the pay range for a Senior Engineer (E3) in Boston?")
    assert answer.refused and answer.answer == NOT_CONFIDENT and answer.completion_tokens == 0  # passages found
    assert "generation" not in captured.spans()
