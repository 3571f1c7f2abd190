"""Langfuse tracing with the real SDK: spans go to an in-memory OpenTelemetry exporter, REST calls (scores) to a
loopback HTTP receiver. The Langfuse server itself cannot run here; everything the SDK produces is real."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan

from assistant.access import Principal
from assistant.answering import Answer, Answerer
from assistant.errors import TracingError
from assistant.feedback import read_feedback
from assistant.generator import Generator
from assistant.question_log import LoggedQuestion, QuestionLog
from assistant.settings import GeneratorSettings, Settings, TracingSettings, load_settings
from assistant.tracing import FEEDBACK_SCORE, Tracer
from evals.review import collect
from tests.conftest import Captured, Receiver, run, runtime

FLOATING_HOLIDAYS = "How many floating holidays do I get each year?"


@pytest.fixture
def answerer_for(handbook_index: Settings, tiny_model: Path, tmp_path: Path) -> Iterator[Callable[[Tracer], Answerer]]:
    """Answerers over the handbook index with a tiny generator, traced by the given tracer."""
    generator = Generator(GeneratorSettings(model=str(tiny_model), device="cpu", max_new_tokens=8), tmp_path)
    with runtime(handbook_index, generator=generator) as components:
        yield lambda tracer: Answerer(components.retriever(), components.recall_gate, generator, tracer=tracer)


@pytest.fixture
def traced(answerer_for: Callable[[Tracer], Answerer], captured: Captured) -> Answerer:
    return answerer_for(Tracer(TracingSettings(), client=captured.client))


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def observed(span: ReadableSpan, key: str) -> Any:
    return json.loads(attrs(span)[f"langfuse.observation.{key}"])


def test_an_answer_is_one_trace_with_retrieval_recall_check_and_generation(
    traced: Answerer, captured: Captured
) -> None:
    answer = traced.ask(Principal.of("dana", ["everyone"]), FLOATING_HOLIDAYS, session_id="chat-42")
    spans = captured.spans()
    assert set(spans) == {"question", "retrieval", "recall-check", "generation"}
    root = spans["question"]
    assert answer.trace_id == format(root.context.trace_id, "032x")
    for name in ("retrieval", "recall-check", "generation"):
        assert spans[name].context.trace_id == root.context.trace_id
        assert spans[name].parent is not None and spans[name].parent.span_id == root.context.span_id
    for span in spans.values():
        assert attrs(span)["user.id"] == "dana" and attrs(span)["session.id"] == "chat-42"

    retrieval = spans["retrieval"]
    assert attrs(retrieval)["langfuse.observation.type"] == "retriever"
    assert observed(retrieval, "input")["groups"] == ["everyone"]
    results = observed(retrieval, "output")
    assert [r["doc_id"] for r in results] == [c.doc_id for c in answer.retrieved]
    assert all("everyone" in r["groups"] and "text" not in r for r in results)  # chunk text stays home by default

    check = spans["recall-check"]
    assert observed(check, "output") == {"answerable": True, "vouched_by_evidence": False}
    assert observed(check, "input")["threshold"] == traced.gate.settings.min_evidence

    generation = spans["generation"]
    assert attrs(generation)["langfuse.observation.type"] == "generation"
    assert attrs(generation)["langfuse.observation.model.name"] == traced.generator.model_id
    assert observed(generation, "usage_details") == {
        "input": answer.prompt_tokens,
        "output": answer.completion_tokens,
    }
    assert observed(generation, "input") == {"question": FLOATING_HOLIDAYS, "context_blocks": len(answer.retrieved)}
    assert "langfuse.observation.completion_start_time" in attrs(generation)
    assert observed(generation, "metadata.backend") == "in-process"  # through vLLM: the engine's URL
    assert observed(root, "output")["refused"] is False
    # Document text stays home by default: the answer may quote the blocks, so only its length and sources go.
    for output in (observed(root, "output"), observed(generation, "output")):
        assert "answer" not in output and output["chars"] == len(answer.answer)
        assert output["cited"] == [c.doc_id for c in answer.citations]


def test_document_text_is_sent_only_when_allowed(
    answerer_for: Callable[[Tracer], Answerer], captured: Captured
) -> None:
    tracer = Tracer(TracingSettings(include_document_text=True), client=captured.client)
    answer = answerer_for(tracer).ask(Principal.of("dana", ["everyone"]), FLOATING_HOLIDAYS)
    spans = captured.spans()
    assert [r["text"] for r in observed(spans["retrieval"], "output")] == [c.text for c in answer.retrieved]
    prompt = attrs(spans["generation"])["langfuse.observation.input"]
    assert FLOATING_HOLIDAYS in prompt and answer.retrieved[0].text[:40] in prompt
    assert observed(spans["question"], "output")["answer"] == answer.answer
    assert observed(spans["generation"], "output")["answer"] == answer.answer


def test_a_refusal_is_traced_without_a_generation(traced: Answerer, captured: Captured) -> None:
    answer = traced.ask(Principal.of("dana", ["everyone"]), "What is the wifi password at the Lisbon office?")
    spans = captured.spans()
    assert answer.refused and set(spans) == {"question", "retrieval", "recall-check"}
    assert observed(spans["recall-check"], "output") == {"answerable": False, "vouched_by_evidence": False}
    assert attrs(spans["recall-check"])["langfuse.observation.level"] == "WARNING"
    assert observed(spans["question"], "output")["refused"] is True


def test_a_reader_that_stops_streaming_still_closes_the_trace(traced: Answerer, captured: Captured) -> None:
    stream = traced.stream(Principal.of("dana", ["everyone"]), FLOATING_HOLIDAYS)
    first = next(stream)
    assert isinstance(first, str)
    stream.close()
    spans = captured.spans()
    assert {"question", "generation"} <= set(spans)  # both ended, so both exported
    assert "stopped" in observed(spans["question"], "output")
    assert attrs(spans["generation"])["langfuse.observation.level"] == "WARNING"  # stopped, not failed


def test_a_reader_that_closes_once_it_has_the_answer_records_the_answer(traced: Answerer, captured: Captured) -> None:
    with traced.stream(Principal.of("dana", ["everyone"]), FLOATING_HOLIDAYS) as stream:
        assert all(isinstance(piece, str) for piece in stream)
        item = stream.answer  # as a UI does once it has the final answer, then closes the stream
    assert isinstance(item, Answer)
    output = observed(captured.spans()["question"], "output")
    assert "stopped" not in output and output["refused"] is False and output["chars"] == len(item.answer)


def test_feedback_becomes_a_boolean_score_on_the_trace(captured: Captured, receiver: Receiver) -> None:
    tracer = Tracer(TracingSettings(), client=captured.client)
    trace_id = uuid.uuid4().hex
    tracer.feedback(trace_id, helpful=False, comment="cited the wrong policy")
    tracer.flush()
    [request] = [r for r in receiver.requests if r["path"] == "/api/public/scores"]
    assert request["headers"]["Authorization"].startswith("Basic ")
    [score] = request["body"]
    assert score["traceId"] == trace_id and score["name"] == FEEDBACK_SCORE
    assert score["value"] == 0.0 and score["dataType"] == "BOOLEAN" and score["comment"] == "cited the wrong policy"
    with pytest.raises(TracingError, match="not a trace id"):
        tracer.feedback("answer-7", helpful=True)


def test_without_keys_nothing_is_built_and_answers_still_work(
    answerer_for: Callable[[Tracer], Answerer],
) -> None:
    tracer = Tracer(TracingSettings())
    assert not tracer.enabled and tracer.client is None
    answer = answerer_for(tracer).ask(Principal.of("dana", ["everyone"]), FLOATING_HOLIDAYS)
    assert not answer.refused and answer.trace_id is None
    with pytest.raises(TracingError, match="tracing is off"):
        tracer.feedback(uuid.uuid4().hex, helpful=True)


def test_default_profile_reads_langfuse_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_PROFILE", "default")
    for name in ("LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY", "LANGFUSE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert not load_settings().tracing.enabled
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-1")
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-1")
    assert not load_settings().tracing.enabled  # keys alone: no server named, nothing goes to a third party
    monkeypatch.setenv("LANGFUSE_BASE_URL", "https://langfuse.internal")
    tracing = load_settings().tracing
    assert tracing.enabled and tracing.base_url == "https://langfuse.internal"
    assert "sk-lf-1" not in repr(tracing)  # the secret never shows in logs or tracebacks


def test_feedback_command_sends_the_score(tmp_path: Path, receiver: Receiver) -> None:
    trace_id = uuid.uuid4().hex
    keys = {
        "ASSISTANT_TRACING__PUBLIC_KEY": "pk-lf-cli",
        "ASSISTANT_TRACING__SECRET_KEY": "sk-lf-cli",
        "ASSISTANT_TRACING__BASE_URL": receiver.url,
    }
    result = run("feedback", trace_id, "good", "--comment", "spot on", data_dir=tmp_path, extra_env=keys)
    assert result.returncode == 0, result.stderr
    [score] = next(r["body"] for r in receiver.requests if r["path"] == "/api/public/scores")
    assert score["traceId"] == trace_id and score["value"] == 1.0 and score["comment"] == "spot on"

    off = run("feedback", trace_id, "good", data_dir=tmp_path)
    assert off.returncode == 1 and off.stderr.strip().count("\n") == 0 and "tracing is off" in off.stderr


def test_a_verdict_from_the_command_line_reaches_feedback_jsonl_and_the_review_queue(
    tmp_path: Path, receiver: Receiver
) -> None:
    trace_id = uuid.uuid4().hex
    asked = LoggedQuestion(
        "dana", ["everyone"], "Which airline do we book?", "handbook", "answered", 0.9, 0.5,
        [{"rank": 1, "doc_id": "company/travel-policy.docx", "title": "Travel", "groups": ["everyone"], "score": 1.0}],
        ["company/travel-policy.docx"], True, 1, 1, 0, trace_id, "adapters/house",
    )  # fmt: skip
    QuestionLog(tmp_path).record(asked)
    keys = {
        "ASSISTANT_TRACING__PUBLIC_KEY": "pk-lf-cli",
        "ASSISTANT_TRACING__SECRET_KEY": "sk-lf-cli",
        "ASSISTANT_TRACING__BASE_URL": receiver.url,
    }
    result = run("feedback", trace_id, "bad", "--comment", "wrong policy", data_dir=tmp_path, extra_env=keys)
    assert result.returncode == 0, result.stderr
    [score] = next(r["body"] for r in receiver.requests if r["path"] == "/api/public/scores")
    assert score["traceId"] == trace_id and score["value"] == 0.0

    [verdict] = read_feedback(tmp_path)
    assert (verdict.user_id, verdict.question, verdict.helpful, verdict.comment) == (
        "dana",
        asked.question,
        False,
        "wrong policy",
    )
    assert verdict.trace_id == trace_id and verdict.cited == ["company/travel-policy.docx"]
    [queued] = collect(QuestionLog(tmp_path).read(), read_feedback(tmp_path), set(), start="2000-01-01",
                       low_evidence_margin=0.0)  # fmt: skip
    assert queued.reasons == ["thumbs down"] and queued.comment == "wrong policy" and queued.trace_id == trace_id

    off = run("feedback", trace_id, "good", data_dir=tmp_path)  # tracing off: the file still takes it
    assert off.returncode == 0, off.stderr
    assert [f.helpful for f in read_feedback(tmp_path)] == [False, True]
