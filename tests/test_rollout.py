"""Staging an adapter: candidate -> shadow -> canary -> promoted and back (tuning/rollout.py), who is served it
(assistant/rollout.py), shadow answers below served ones (assistant/shadow.py) and the evidence promotion needs
(evals/rollout.py). The models here are scripted (`Scripted`): these tests are about routing, ordering and the
records, not about what a model writes."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path

import pytest

from assistant.access import Principal
from assistant.adapters import adapters_dir, promoted_id, read_record
from assistant.answer_model import Usage
from assistant.answering import Answerer
from assistant.components import MODELS_KEPT, Components
from assistant.errors import ConfigError
from assistant.prompt import MODEL_REFUSAL
from assistant.question_log import LoggedQuestion, QuestionLog
from assistant.quote_constraint import FormatRequest
from assistant.rollout import Rollout, bucket, in_canary, read_rollout, write_rollout
from assistant.settings import Settings
from assistant.shadow import SHADOW_LOG, InFlight, ShadowRunner, read_shadow_log, read_skipped
from evals.rollout import promotion_evidence, served_figures, wilson
from tests.conftest import ingest, runtime
from tests.test_tuning import recorded_adapter
from tuning import registry, rollout

EVERYONE = Principal("dana", frozenset({"everyone"}))


class Scripted:
    """An AnswerModel that writes `text` word by word; `gate` (when given) holds it before its first word."""

    def __init__(self, name: str, text: str, *, gate: threading.Event | None = None, pause: float = 0.0) -> None:
        self.name, self.text, self.gate, self.pause = name, text, gate, pause
        self.started: list[float] = []

    model_id = property(lambda self: "scripted")
    adapter_id = property(lambda self: self.name)
    backend = property(lambda self: "in-process")

    def chat_prompt(self, messages: Sequence[dict[str, str]]) -> str:
        raise NotImplementedError

    def load(self) -> None:
        pass

    def stream(
        self, prompt: str, *, max_new_tokens: int | None = None, format_request: FormatRequest | None = None
    ) -> Generator[str, None, Usage]:
        self.started.append(time.monotonic())
        if self.gate is not None:
            self.gate.wait(30)
        for word in self.text.split(" "):
            time.sleep(self.pause)
            yield word + " "
        return Usage(10, len(self.text.split()))


ANSWER = 'The office closes on public holidays [1].\n[1] "The office closes for eleven public holidays each year."'


@pytest.fixture
def indexed(settings: Settings, tmp_path: Path) -> Settings:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "holidays.md").write_text("# Holidays\n\nThe office closes for eleven public holidays each year.\n")
    (corpus / "access.yaml").write_text("rules:\n  - match: '*.md'\n    groups: [everyone]\n")
    assert ingest(settings, corpus).ok
    return settings


# -- stages and records -----------------------------------------------------------------------------------
def test_a_candidate_moves_through_its_stages_and_each_move_is_recorded(indexed: Settings) -> None:
    recorded_adapter(indexed, "current")
    recorded_adapter(indexed, "candidate")
    with runtime(indexed) as components:
        store = components.store
        registry.promote(indexed, "current", store)
        record = rollout.start(indexed, "candidate", "shadow", 0.2, "cli:olivia", "first look", store)
        assert rollout.stage_of(indexed, record) == "shadow 20%"
        record = rollout.start(indexed, "candidate", "canary", 0.1, "cli:olivia", "looks fine", store)
        assert rollout.stage_of(indexed, record) == "canary 10%"
        with pytest.raises(ConfigError, match="current is the promoted adapter"):
            rollout.start(indexed, "current", "shadow", 0.5, "cli:olivia", "again", store)
        message = rollout.rollback(indexed, "cli:ian", "thumbs-down spike")  # from canary: out, at once
        assert message == "candidate left canary: everyone is served current"
        assert read_rollout(adapters_dir(indexed)) is None and promoted_id(indexed) == "current"
        rollout.start(indexed, "candidate", "canary", 0.1, "cli:olivia", "fixed", store)
        rollout.promote(indexed, "candidate", "cli:olivia", "canary held", components)
        assert promoted_id(indexed) == "candidate" and read_rollout(adapters_dir(indexed)) is None
        assert rollout.rollback(indexed, "cli:ian", "back") == "now serving current"  # from promoted
    moves = read_record(adapters_dir(indexed) / "candidate").rollout
    assert [(m["from"], m["to"]) for m in moves] == [
        ("candidate", "shadow"),
        ("shadow", "canary"),
        ("canary", "rolled back"),
        ("rolled back", "canary"),
        ("canary", "promoted"),
        ("promoted", "rolled back"),
    ]
    assert moves[2]["who"] == "cli:ian" and moves[2]["why"] == "thumbs-down spike" and moves[2]["when"]
    assert moves[0]["evidence"]["share"] == 0.2 and moves[0]["evidence"]["offline"]["token_f1"] == 0.5
    assert moves[-1]["evidence"] == {"stage": "promoted", "now_served": "current"}


def test_moves_are_refused_with_one_line(indexed: Settings) -> None:
    recorded_adapter(indexed, "first")
    recorded_adapter(indexed, "second")
    recorded_adapter(indexed, "weak", f1=0.1)
    with runtime(indexed) as components:
        store = components.store
        with pytest.raises(ConfigError, match=r"--share 1.5: give a share in \(0, 1\]"):
            rollout.start(indexed, "first", "shadow", 1.5, "cli:o", "why", store)
        with pytest.raises(ConfigError, match="say why"):
            rollout.start(indexed, "first", "shadow", 0.2, "cli:o", " ", store)
        with pytest.raises(ConfigError, match=r"no canary for weak: token_f1 0\.100 is below the gate"):
            rollout.start(indexed, "weak", "canary", 0.1, "cli:o", "why", store)
        rollout.start(indexed, "weak", "shadow", 0.1, "cli:o", "shadow needs no gate: never shown", store)
        with pytest.raises(ConfigError, match="weak is in shadow: promote it or roll it back"):
            rollout.start(indexed, "second", "canary", 0.1, "cli:o", "why", store)
        with pytest.raises(ConfigError, match="not promoting first: it has no rollout evidence"):
            rollout.promote(indexed, "first", "cli:o", "why", components, evidence=True)
    with pytest.raises(ConfigError, match="not a rollout record"):
        (adapters_dir(indexed) / "rollout.json").write_text('{"adapter": "weak", "stage": "everyone", "share": 2}')
        read_rollout(adapters_dir(indexed))


def test_a_promotion_or_rollback_beside_a_running_process_applies_from_its_next_question(indexed: Settings) -> None:
    recorded_adapter(indexed, "first")
    recorded_adapter(indexed, "second")
    first, second = Scripted("first", ANSWER), Scripted("second", ANSWER)
    with runtime(indexed, candidates={"first": first, "second": second}) as components:
        registry.promote(indexed, "first", components.store)
        assert components.generator is first
        registry.promote(indexed, "second", components.store)  # from another process: only the file changes
        assert components.generator is second and components.adapter is not None and components.adapter.id == "second"
        assert components.answerer(principal=EVERYONE).generator is second
        registry.rollback(indexed)
        assert components.generator is first  # the model served before, kept: nothing loads again
        for n in range(4):  # a long-running app promoting adapter after adapter keeps a bounded number of models
            recorded_adapter(indexed, f"later-{n}")
            registry.promote(indexed, f"later-{n}", components.store)
            components.generator  # noqa: B018  (asked for: made, or kept)
        assert len(components._models) == MODELS_KEPT and "later-3" in components._models


def test_an_unreadable_rollout_file_serves_the_promoted_adapter_and_rollback_replaces_it(indexed: Settings) -> None:
    recorded_adapter(indexed, "candidate")
    (adapters_dir(indexed) / "rollout.json").write_text("{broken")
    served = Scripted("served", ANSWER)
    with runtime(indexed, generator=served, candidates={"candidate": Scripted("candidate", ANSWER)}) as components:
        assert components.answerer(principal=EVERYONE).generator is served  # the chat goes on
    assert "was unreadable and is replaced" in rollout.rollback(indexed, "cli:o", "a bad edit")
    assert read_rollout(adapters_dir(indexed)) is None


# -- who is served the candidate --------------------------------------------------------------------------
def test_canary_is_sticky_per_user_and_near_its_share() -> None:
    canary = Rollout("candidate", "canary", 0.1, "now")
    users = [f"user{n}" for n in range(20_000)]
    chosen = [u for u in users if in_canary(canary, u)]
    assert abs(len(chosen) / len(users) - 0.1) < 0.01  # binomial sd 0.002: 5 sd of tolerance
    assert chosen == [u for u in users if in_canary(canary, u)]  # the same users on every question
    other = Rollout("another", "canary", 0.1, "now")
    assert set(chosen) != {u for u in users if in_canary(other, u)}  # a new candidate draws a new sample
    assert not in_canary(Rollout("candidate", "shadow", 1.0, "now"), "user1")  # shadow serves nobody
    assert 0 <= bucket("candidate", "user1") < 1


def test_canary_users_are_served_the_candidate_others_and_outsiders_the_promoted_one(indexed: Settings) -> None:
    recorded_adapter(indexed, "candidate", groups=("everyone", "hr"))
    candidate = Scripted("candidate", ANSWER)
    served = Scripted("served", ANSWER)
    write_rollout(adapters_dir(indexed), Rollout("candidate", "canary", 0.5, "now"))
    inside = next(u for u in (f"u{n}" for n in range(100)) if bucket("candidate", u) < 0.5)
    outside = next(u for u in (f"u{n}" for n in range(100)) if bucket("candidate", u) >= 0.5)
    with runtime(indexed, generator=served, candidates={"candidate": candidate}) as components:
        hr = components.answerer(principal=Principal(inside, frozenset({"everyone", "hr"})))
        assert hr.generator is candidate and hr.adapter_id == "candidate"
        answer = hr.ask(Principal(inside, frozenset({"everyone", "hr"})), "When does the office close?")
        assert answer.adapter == "candidate"  # the caption, the question log and the feedback name it
        not_hr = components.answerer(principal=Principal(inside, frozenset({"everyone"})))
        assert not_hr.generator is served  # never given an adapter trained on text they may not read
        assert components.answerer(principal=Principal(outside, frozenset({"everyone", "hr"}))).generator is served
        assert (
            components.answerer(log_questions=False, principal=Principal(inside, frozenset({"hr"}))).generator is served
        )
        write_rollout(adapters_dir(indexed), None)  # rolled back from another process: the next question follows
        assert components.answerer(principal=Principal(inside, frozenset({"everyone", "hr"}))).generator is served
    logged = QuestionLog(indexed.data_dir).read()
    assert [e.adapter for e in logged] == ["candidate"]


# -- shadow answers ---------------------------------------------------------------------------------------
def shadowed(indexed: Settings, candidate: Scripted, served: Scripted, share: float = 1.0) -> Components:
    write_rollout(adapters_dir(indexed), Rollout("candidate", "shadow", share, "now"))
    return Components(indexed, generator=served, candidates={"candidate": candidate})


def test_shadow_answers_are_recorded_never_shown_and_start_after_the_served_answer(indexed: Settings) -> None:
    recorded_adapter(indexed, "candidate")
    candidate, served = Scripted("candidate", "Maybe it closes sometimes."), Scripted("served", ANSWER, pause=0.01)
    components = shadowed(indexed, candidate, served)
    try:
        answerer = components.answerer(principal=EVERYONE, shadow=True)
        answer = answerer.ask(EVERYONE, "When does the office close?")
        done = time.monotonic()
        components.shadow_runner(components.collection(), components.candidate("candidate")).join()
    finally:
        components.close()
    assert answer.adapter == "served" and "eleven public holidays" in answer.answer  # the served answer, shown
    assert candidate.started and candidate.started[0] >= done - 0.05  # after the served answer was complete
    [record] = read_shadow_log(indexed.data_dir)
    assert record.shadow_adapter == "candidate" and record.served_adapter == "served"
    assert record.served["label"] == "supported" and not record.served["mended"]
    assert record.shadow["label"] == "quoted" and record.shadow["mended"]  # its own line did not check out
    assert record.agreement == {"same_refusal": True, "same_cited_docs": True, "same_label": False}
    text = (indexed.data_dir / SHADOW_LOG).read_text()
    assert "When does the office close" not in text and "eleven" not in text and "dana" not in text  # ids, numbers


def test_shadow_is_skipped_for_a_principal_without_the_candidates_groups(indexed: Settings) -> None:
    recorded_adapter(indexed, "candidate", groups=("everyone", "hr"))
    candidate, served = Scripted("candidate", ANSWER), Scripted("served", ANSWER)
    components = shadowed(indexed, candidate, served)
    try:
        components.answerer(principal=EVERYONE, shadow=True).ask(EVERYONE, "When does the office close?")
        time.sleep(0.5)
    finally:
        components.close()
    assert candidate.started == [] and not (indexed.data_dir / SHADOW_LOG).exists()


def test_shadow_work_waits_for_served_answers_yields_to_them_and_drops_when_full(indexed: Settings) -> None:
    recorded_adapter(indexed, "candidate")
    slow = Scripted("candidate", " ".join(["word"] * 200), pause=0.02)
    with runtime(indexed, generator=Scripted("served", ANSWER)) as components:
        flight = InFlight()
        runner = ShadowRunner(
            lambda: Answerer(
                components.retriever(), components.recall_gate, slow, evidence=components.evidence
            ),  # as `Components.answerer_with` builds it
            flight,
            indexed.data_dir,
            adapter_id="candidate",
            collection="handbook",
            queue_size=1,
        )
        delivered: list[object] = []
        served = components.answerer(log_questions=False)
        served.after_answer = delivered.append
        served.ask(EVERYONE, "When does the office close?")
        job = delivered[0]
        with flight:  # a user's answer is being generated: shadow work must not start
            runner.submit(job)  # type: ignore[arg-type]
            deadline = time.monotonic() + 5
            while runner._queue.qsize() and time.monotonic() < deadline:  # the worker took it, and waits
                time.sleep(0.01)
            assert runner.submit(job) is True  # type: ignore[arg-type]  # the queue's one place
            assert runner.submit(job) is False  # type: ignore[arg-type]  # full: dropped and counted
            time.sleep(0.3)
            assert slow.started == []
        deadline = time.monotonic() + 10
        while not slow.started and time.monotonic() < deadline:
            time.sleep(0.01)
        with flight:  # a served answer starts while the shadow one is being written: it stops
            time.sleep(0.3)
        runner.join()
        runner.stop()
    assert runner.counts.dropped == 1 and runner.counts.yielded >= 1
    assert runner.counts.submitted == 3
    skipped = read_skipped(indexed.data_dir, "candidate")  # what an engineer is shown: the same counts
    assert skipped == {"dropped": 1, "yielded": runner.counts.yielded, "failed": 0}
    assert read_skipped(indexed.data_dir, "another") == {"dropped": 0, "yielded": 0, "failed": 0}


# -- evidence ---------------------------------------------------------------------------------------------
def logged(adapter: str, *, refused: bool = False, label: str | None = "supported", trace: str = "") -> LoggedQuestion:
    return LoggedQuestion(
        user_id="u",
        groups=["everyone"],
        question="q",
        collection="handbook",
        outcome="refused-model" if refused else "answered",
        evidence=0.9,
        threshold=0.6,
        retrieved=[],
        cited=[],
        format_valid=True,
        quotes=1,
        quotes_verbatim=1,
        removed_citations=0,
        trace_id=trace or None,
        adapter=adapter,
        label=None if refused else label,
        seconds=1.0,
        created="2026-12-07T10:00:00",
    )


def test_promotion_needs_enough_evidence_no_regression_and_the_held_out_set(indexed: Settings, tmp_path: Path) -> None:
    recorded_adapter(indexed, "current")
    recorded_adapter(indexed, "candidate")
    settings = indexed.model_copy(update={"rollout": indexed.rollout.model_copy(update={"min_questions": 20})})
    held_out = tmp_path / "held-out.jsonl"
    held_out.write_text(
        json.dumps(
            {
                "question": "How many public holidays does the office close for?",
                "relevant": ["holidays.md"],
                "groups": ["everyone"],
                "answer": "Eleven.",
                "key_facts": ["eleven"],
            }
        )
        + "\n"
    )
    right = Scripted("current", ANSWER)
    wrong = Scripted("candidate", MODEL_REFUSAL)  # refuses what the promoted adapter answers
    log = QuestionLog(settings.data_dir)
    with runtime(settings, candidates={"current": right, "candidate": wrong}) as components:
        registry.promote(settings, "current", components.store)
        rollout.start(settings, "candidate", "canary", 0.1, "cli:o", "why", components.store)
        since = read_rollout(adapters_dir(settings)).since  # type: ignore[union-attr]
        for _ in range(30):
            log.record(dataclasses.replace(logged("current"), created=since))
        for n in range(10):
            log.record(dataclasses.replace(logged("candidate", refused=n < 3), created=since))

        def promote() -> rollout.Promotion:
            return rollout.promote(settings, "candidate", "cli:o", "why", components, evidence=True, held_out=held_out)

        with pytest.raises(ConfigError, match=r"candidate has 10 canary questions since .*; promotion needs 20"):
            promote()
        for _ in range(20):
            log.record(dataclasses.replace(logged("candidate", label="quoted"), created=since))
        with pytest.raises(ConfigError, match=r"refusal_rate .* 0\.100 against 0\.000 for current") as refused:
            promote()
        assert "supported" in str(refused.value)  # every regression is named
        for _ in range(600):
            log.record(dataclasses.replace(logged("candidate"), created=since))
        with pytest.raises(
            ConfigError,
            match=r"on the held-out set held-out its answer lines are correct for 0\.000, "
            r"against 1\.000 for current",
        ):
            promote()  # production figures hold, but it answers the held-out question wrong
        wrong.text = ANSWER
        promotion = promote()
    assert promoted_id(settings) == "candidate"
    saved = read_record(adapters_dir(settings) / "candidate").rollout[-1]["evidence"]
    assert saved == promotion.evidence and saved["source"] == "canary" and saved["candidate"]["questions"] == 630
    assert saved["held_out"]["candidate"]["line_correct"] == saved["held_out"]["promoted"]["line_correct"] == 1.0


def test_served_figures_carry_counts_and_wilson_intervals(tmp_path: Path) -> None:
    log = QuestionLog(tmp_path)
    for n in range(40):
        log.record(logged("a", label="supported" if n % 4 else "quoted", trace=f"{n:032x}"))
    (tmp_path / "feedback.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "user_id": "u",
                    "question": "q",
                    "helpful": n != 0,
                    "comment": None,
                    "trace_id": f"{n:032x}",
                    "model": "m",
                    "adapter": "a",
                    "cited": [],
                    "created": "2026-12-07T10:00:00",
                }
            )
            + "\n"
            for n in range(10)
        )
    )
    [figures] = served_figures(tmp_path)
    assert figures.adapter == "a" and figures.questions == 40 and figures.latency_p50 == 1.0
    assert figures.rates["supported"].successes == 30 and figures.rates["supported"].n == 40
    assert figures.rates["thumbs_down"].successes == 1 and figures.rates["thumbs_down"].n == 10
    low, high = figures.rates["supported"].interval
    assert (round(low, 3), round(high, 3)) == tuple(round(x, 3) for x in wilson(30, 40))
    assert 0.59 < low < 0.75 < high < 0.86
    assert figures.rates["supported"].shown().startswith("0.75 [") and figures.rates["supported"].shown().endswith(
        "n=40"
    )
    assert wilson(0, 0) == (0.0, 1.0)


def test_evidence_from_shadow_compares_the_same_questions(tmp_path: Path) -> None:
    from assistant.shadow import ShadowRecord

    def scored(refused: bool) -> dict[str, object]:
        return {
            "refused": refused,
            "format_valid": True,
            "quotes": 1,
            "quotes_verbatim": 1.0,
            "label": None if refused else "supported",
            "seconds": 1.0,
            "cited_docs": [],
        }

    records = [
        ShadowRecord(
            "t",
            "handbook",
            "current",
            "candidate",
            scored(False),
            scored(n % 2 == 0),
            {"same_refusal": n % 2 == 1, "same_cited_docs": True, "same_label": n % 2 == 1},
        )
        for n in range(40)
    ]
    (tmp_path / SHADOW_LOG).write_text("".join(json.dumps(dataclasses.asdict(r)) + "\n" for r in records))
    evidence = promotion_evidence(
        tmp_path, "candidate", "current", "2000-01-01", min_questions=30, margins={"refusal_rate": 0.05}
    )
    assert evidence.source == "shadow" and evidence.candidate.questions == 40
    assert evidence.failures == [
        "refusal_rate (questions refused (by the model or the gates)) 0.500 against 0.000 "
        "for current: worse by more than 0.05"
    ]


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Iterator[None]:
    yield
    assert not [t for t in threading.enumerate() if t.name == "shadow-answers" and t.is_alive() and not t.daemon]


def test_the_rollout_commands_print_stages_and_refuse_in_one_line(indexed: Settings) -> None:
    from tests.conftest import run

    recorded_adapter(indexed, "candidate")
    refused = run("tune", "rollout", "canary", "nope", "--why", "try", data_dir=indexed.data_dir)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.count("\n") == 1 and "nope" in refused.stderr  # no such adapter: one line
    started = run("tune", "rollout", "shadow", "candidate", "--share", "0.3", "--why", "try", data_dir=indexed.data_dir)
    assert started.returncode == 0, started.stderr
    assert "candidate is in shadow: 30% of questions, answered again and never shown" in started.stdout
    status = run("tune", "rollout", "status", data_dir=indexed.data_dir)
    assert status.returncode == 0 and "shadow 30%" in status.stdout and "cli:" in status.stdout
    assert "answered 0; not answered: 0 yielded to served answers, 0 dropped" in status.stdout
    back = run("tune", "rollback", "--why", "enough", data_dir=indexed.data_dir)
    assert back.returncode == 0 and "candidate left shadow" in back.stdout
