"""Langfuse tracing with the real SDK: spans go to an in-memory OpenTelemetry exporter, REST calls (scores) to a
loopback HTTP receiver. The Langfuse server itself cannot run here; everything the SDK produces is real."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from langfuse import Langfuse
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assistant.access import Principal
from assistant.answering import Answerer
from assistant.errors import TracingError
from assistant.generator import Generator
from assistant.retriever import build_retriever
from assistant.settings import GeneratorSettings, Settings, TracingSettings, load_settings
from assistant.store import build_store
from assistant.tracing import FEEDBACK_SCORE, Tracer
from tests.test_cli import run
from tests.test_generator import tiny_model  # noqa: F401  (fixture)

FLOATING_HOLIDAYS = "How many floating holidays do I get each year?"


@dataclass
class Receiver:
    """A loopback stand-in for the Langfuse server's REST API: records every request, answers 2xx."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    received = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
            self.send_response(202 if self.path == "/api/public/scores" else 200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"message": "Accepted"}')

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    received.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield received
    server.shutdown()


@dataclass
class Captured:
    client: Langfuse
    exporter: InMemorySpanExporter

    def spans(self) -> dict[str, ReadableSpan]:
        self.client.flush()
        return {s.name: s for s in self.exporter.get_finished_spans()}


@pytest.fixture
def captured(receiver: Receiver) -> Iterator[Captured]:
    # The SDK keeps one client per public key and registers processors on its tracer provider: a fresh key and
    # provider per test keep tests from seeing each other's spans.
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    client = Langfuse(
        public_key=f"pk-lf-test-{uuid.uuid4().hex[:8]}",
        secret_key="sk-lf-test",
        base_url=receiver.url,
        span_exporter=exporter,
        tracer_provider=provider,
    )
    yield Captured(client, exporter)
    client.shutdown()
    provider.shutdown()


def make_answerer(settings: Settings, model: Path, tmp_path: Path, tracer: Tracer) -> Answerer:
    generator = Generator(GeneratorSettings(model=str(model), device="cpu", max_new_tokens=8), tmp_path)
    return Answerer(build_retriever(settings, build_store(settings)), generator, tracer=tracer)


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def observed(span: ReadableSpan, key: str) -> Any:
    return json.loads(attrs(span)[f"langfuse.observation.{key}"])


def test_an_answer_is_one_trace_with_retrieval_recall_check_and_generation(
    handbook_index: Settings,
    tiny_model: Path,  # noqa: F811
    tmp_path: Path,
    captured: Captured,
) -> None:
    tracer = Tracer(TracingSettings(), client=captured.client)
    answer = make_answerer(handbook_index, tiny_model, tmp_path, tracer).ask(
        Principal.of("dana", ["everyone"]), FLOATING_HOLIDAYS, session_id="chat-42"
    )
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
    assert observed(check, "output") == {"answerable": True}
    assert observed(check, "input")["threshold"] == handbook_index.recall_gate.min_evidence

    generation = spans["generation"]
    assert attrs(generation)["langfuse.observation.type"] == "generation"
    assert attrs(generation)["langfuse.observation.model.name"] == str(tiny_model)
    assert observed(generation, "usage_details") == {
        "input": answer.prompt_tokens,
        "output": answer.completion_tokens,
    }
    assert observed(generation, "input") == {"question": FLOATING_HOLIDAYS, "context_blocks": len(answer.retrieved)}
    assert "langfuse.observation.completion_start_time" in attrs(generation)
    assert observed(root, "output")["refused"] is False


def test_chunk_text_and_prompt_are_sent_only_when_allowed(
    handbook_index: Settings,
    tiny_model: Path,  # noqa: F811
    tmp_path: Path,
    captured: Captured,
) -> None:
    tracer = Tracer(TracingSettings(include_chunk_text=True), client=captured.client)
    answer = make_answerer(handbook_index, tiny_model, tmp_path, tracer).ask(
        Principal.of("dana", ["everyone"]), FLOATING_HOLIDAYS
    )
    spans = captured.spans()
    assert [r["text"] for r in observed(spans["retrieval"], "output")] == [c.text for c in answer.retrieved]
    prompt = attrs(spans["generation"])["langfuse.observation.input"]
    assert FLOATING_HOLIDAYS in prompt and answer.retrieved[0].text[:40] in prompt


def test_a_refusal_is_traced_without_a_generation(
    handbook_index: Settings,
    tiny_model: Path,  # noqa: F811
    tmp_path: Path,
    captured: Captured,
) -> None:
    tracer = Tracer(TracingSettings(), client=captured.client)
    answer = make_answerer(handbook_index, tiny_model, tmp_path, tracer).ask(
        Principal.of("dana", ["everyone"]), "What is the wifi password at the Lisbon office?"
    )
    spans = captured.spans()
    assert answer.refused and set(spans) == {"question", "retrieval", "recall-check"}
    assert observed(spans["recall-check"], "output") == {"answerable": False}
    assert attrs(spans["recall-check"])["langfuse.observation.level"] == "WARNING"
    assert observed(spans["question"], "output")["refused"] is True


def test_a_reader_that_stops_streaming_still_closes_the_trace(
    handbook_index: Settings,
    tiny_model: Path,  # noqa: F811
    tmp_path: Path,
    captured: Captured,
) -> None:
    tracer = Tracer(TracingSettings(), client=captured.client)
    stream = make_answerer(handbook_index, tiny_model, tmp_path, tracer).stream(
        Principal.of("dana", ["everyone"]), FLOATING_HOLIDAYS
    )
    first = next(stream)
    assert isinstance(first, str)
    stream.close()
    spans = captured.spans()
    assert {"question", "generation"} <= set(spans)  # both ended, so both exported
    assert "stopped" in observed(spans["question"], "output")


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
    handbook_index: Settings,
    tiny_model: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    tracer = Tracer(TracingSettings())
    assert not tracer.enabled and tracer.client is None
    answer = make_answerer(handbook_index, tiny_model, tmp_path, tracer).ask(
        Principal.of("dana", ["everyone"]), FLOATING_HOLIDAYS
    )
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
