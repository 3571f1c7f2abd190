"""The quality loop: golden sets as Langfuse datasets, evaluations as dataset runs with per-item and run-level
scores, recall and citation signals on production traces, the review queue, and the re-ingest impact report.

Langfuse's real SDK runs against a loopback FAKE of the Langfuse server's REST API (`tests/fake_langfuse.py`;
the server cannot run here) and an in-memory span exporter; everything the SDK sends is asserted."""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.access import Principal
from assistant.answering import Answerer
from assistant.errors import SourceError
from assistant.feedback import Feedback, record_feedback
from assistant.generator import Generator
from assistant.identity import load_dev_users
from assistant.question_log import LoggedQuestion, QuestionLog
from assistant.settings import GeneratorSettings, Settings, TracingSettings
from assistant.tracing import Tracer
from evals.answers import ANSWERS_SUFFIX
from evals.datasets import EvalSet, load_golden
from evals.experiments import RunName, push_dataset, retrieval_experiment
from evals.impact import GoldenImpact
from evals.leaks import LEAKS_SUFFIX
from evals.redaction import DocumentGroups, Pseudonyms
from evals.retrieval import evaluate
from evals.review import (
    ReviewFiles,
    ReviewGroup,
    ReviewQueue,
    TrainingRules,
    accept_golden,
    accept_training,
    collect,
    dumps,
    for_reviewer,
    group_similar,
    record_gap,
)
from evals.run_files import save_run
from evals.saved_runs import read_saved_runs, redact_runs
from ingestion.run import run_ingest
from tests.conftest import REPO, Captured, Receiver, ingest, run, runtime, shared_embedder
from tests.review_data import (
    HOLIDAY_DOC,
    HOLIDAY_QUESTION,
    SALARY_DOC,
    SALARY_QUESTION,
    SALARY_TITLE,
    asked,
    carlos_and_dana,
    hit,
    record_documents,
    save_retrieval_run,
    write_log,
)

GOLDEN = REPO / "samples" / "handbook-golden.jsonl"
OUT_OF_CORPUS = "What's the wifi password at the Lisbon office?"


def write_golden(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def first(evalset: EvalSet, n: int) -> EvalSet:
    return EvalSet(evalset.name, evalset.kind, evalset.split, evalset.queries[:n], evalset.corpus)


# -- datasets ---------------------------------------------------------------------------------------
def test_repushing_an_edited_golden_set_updates_items_and_never_duplicates_them(
    captured: Captured, receiver: Receiver, tmp_path: Path
) -> None:
    rows = [
        {"question": "Who approves travel?", "relevant": ["company/travel-policy.docx"], "groups": ["everyone"]},
        {"question": "How long is parental leave?", "relevant": ["hr/parental-leave.md"], "groups": ["hr"]},
        {
            "question": "Where is Reno?",
            "relevant": ["company/office-locations-and-hours.html"],
            "groups": ["everyone"],
            "answer": "3100 Railyard Avenue",
        },
    ]
    golden = write_golden(tmp_path / "hb.jsonl", rows)
    first_push = push_dataset(captured.client, load_golden(golden), "hb")
    assert (first_push.created, first_push.updated, first_push.archived) == (3, 0, 0)
    items = receiver.dataset_items("hb")
    assert sorted(i["input"]["question"] for i in items) == sorted(r["question"] for r in rows)
    assert all("answer" not in i["expectedOutput"] for i in items)  # a reference answer is document text

    rows[0]["relevant"] = ["company/expense-basics.md"]  # edited
    rows.pop(1)  # removed
    rows.append({"question": "What is the PTO accrual?", "relevant": ["company/holidays.md"], "groups": ["everyone"]})
    write_golden(golden, rows)
    second = push_dataset(captured.client, load_golden(golden), "hb")
    assert (second.created, second.updated, second.unchanged, second.archived) == (1, 1, 1, 1)
    items = {i["input"]["question"]: i for i in receiver.dataset_items("hb")}
    assert len(items) == 4  # nothing duplicated: the removed question is archived, not deleted
    assert items["Who approves travel?"]["expectedOutput"]["relevant"] == ["company/expense-basics.md"]
    assert items["How long is parental leave?"]["status"] == "ARCHIVED"

    third = push_dataset(captured.client, load_golden(golden), "hb")
    assert (third.created, third.updated, third.unchanged, third.archived) == (0, 0, 3, 0)


def test_reference_answers_are_pushed_only_when_document_text_may_leave(
    captured: Captured, receiver: Receiver, tmp_path: Path
) -> None:
    golden = write_golden(
        tmp_path / "g.jsonl",
        [{"question": "Where is Reno?", "relevant": ["a"], "groups": ["everyone"], "answer": "3100 Railyard Avenue"}],
    )
    push_dataset(captured.client, load_golden(golden), "with-text", include_text=True)
    [item] = receiver.dataset_items("with-text")
    assert item["expectedOutput"] == {"relevant": ["a"], "answer": "3100 Railyard Avenue"}


# -- experiments ------------------------------------------------------------------------------------
def test_a_retrieval_experiment_links_every_item_and_scores_items_and_the_run(
    handbook_index: Settings, captured: Captured, receiver: Receiver
) -> None:
    golden = first(load_golden(GOLDEN), 4)
    push_dataset(captured.client, golden, "handbook-golden")
    name = RunName.now("retrieval", "0123456789abcdef", "hb-adapter", "idx123")
    with runtime(handbook_index) as components:
        mode = components.settings.retrieval.mode
        outcome, local = retrieval_experiment(
            captured.client, components.retriever(), golden, "handbook-golden", name, mode
        )
        reference = evaluate(components.retriever(), golden, mode)
    assert outcome.items == 4 and outcome.experiment_id
    assert (
        "0123456789" in outcome.run_name
        and "adapter=hb-adapter" in outcome.run_name
        and "index=idx123" in outcome.run_name
    )
    assert local.aggregate == reference.aggregate  # the same numbers as the local evaluation

    spans = [s for s in captured.exporter.get_finished_spans() if s.name == "experiment-item-run"]
    items = {i["id"] for i in receiver.dataset_items("handbook-golden")}
    assert {s.attributes["langfuse.experiment.item.id"] for s in spans} == items  # type: ignore[index]
    assert {s.attributes["langfuse.experiment.id"] for s in spans} == {outcome.experiment_id}  # type: ignore[index]

    scores = receiver.scores()
    per_item = [s for s in scores if s.get("traceId") and s["name"] == "recall@10"]
    assert {s["traceId"] for s in per_item} == {format(sp.context.trace_id, "032x") for sp in spans}
    run_level = {s["name"]: s["value"] for s in scores if s.get("datasetRunId") == outcome.experiment_id}
    assert run_level["recall@10"] == pytest.approx(reference.aggregate["recall@10"])
    assert run_level["mrr@10"] == pytest.approx(reference.aggregate["mrr@10"])


# -- signals on production traces -------------------------------------------------------------------
@pytest.fixture
def answerer_for(handbook_index: Settings, tiny_model: Path, tmp_path: Path) -> Iterator[Callable[..., Answerer]]:
    generator = Generator(GeneratorSettings(model=str(tiny_model), device="cpu", max_new_tokens=8), tmp_path)
    with runtime(handbook_index, generator=generator) as components:

        def build(tracer: Tracer | None = None, log: QuestionLog | None = None) -> Answerer:
            return Answerer(components.retriever(), components.recall_gate, generator, tracer=tracer, question_log=log)

        yield build


def test_every_question_trace_carries_the_recall_check_and_the_citation_check_as_scores(
    answerer_for: Callable[..., Answerer], captured: Captured, receiver: Receiver
) -> None:
    answerer = answerer_for(Tracer(TracingSettings(), client=captured.client))
    answered = answerer.ask(Principal.of("dana", ["everyone"]), "How many floating holidays do I get each year?")
    refused = answerer.ask(Principal.of("dana", ["everyone"]), OUT_OF_CORPUS)
    captured.client.flush()
    by_trace: dict[str, dict[str, float]] = {}
    for score in receiver.scores():
        by_trace.setdefault(score["traceId"], {})[score["name"]] = score["value"]
    assert not answered.refused and refused.refused
    assert answered.recall is not None and refused.recall is not None
    assert by_trace[answered.trace_id]["recall-evidence"] == pytest.approx(answered.recall.evidence.score, abs=1e-4)  # type: ignore[index]
    assert by_trace[answered.trace_id]["recall-answerable"] == 1.0  # type: ignore[index]
    assert by_trace[answered.trace_id]["format-valid"] == float(answered.format_valid)  # type: ignore[index]
    assert by_trace[answered.trace_id]["cited"] == float(bool(answered.citations))  # type: ignore[index]
    assert by_trace[refused.trace_id]["recall-answerable"] == 0.0  # type: ignore[index]
    assert "format-valid" not in by_trace[refused.trace_id]  # type: ignore[index]  # nothing was generated


# -- the review queue -------------------------------------------------------------------------------
def review_files(tmp_path: Path) -> ReviewFiles:
    golden = tmp_path / "golden.jsonl"
    shutil.copy(GOLDEN, golden)
    items = tmp_path / "items.jsonl"
    shutil.copy(REPO / "tuning" / "data" / "handbook-items.jsonl", items)
    return ReviewFiles(tmp_path / "decisions.jsonl", golden, items, tmp_path / "gaps.jsonl")


def test_the_review_queue_groups_refusals_and_thumbs_down_and_accepts_them_with_provenance(
    answerer_for: Callable[..., Answerer], handbook_index: Settings, tmp_path: Path
) -> None:
    log = QuestionLog(tmp_path)
    answerer = answerer_for(log=log)
    dana = Principal.of("dana", ["everyone"])
    answerer.ask(dana, OUT_OF_CORPUS)
    answerer.ask(Principal.of("erin", ["everyone", "engineering"]), "what is the wifi password in the Lisbon office")
    disliked = answerer.ask(dana, "Which airline do we book for business trips?")
    record_feedback(
        tmp_path,
        Tracer(TracingSettings()),
        Feedback("dana", disliked.question, False, "wrong policy", disliked.trace_id, None, None, []),
    )
    files = review_files(tmp_path)
    queue = collect(log.read(), _feedback(tmp_path), files.decided(), start="2000-01-01", low_evidence_margin=0.0)
    groups = group_similar(queue, shared_embedder().embed_documents, threshold=0.8)
    wifi = next(g for g in groups if "wifi" in g.question.lower())
    assert len(wifi.items) == 2 and wifi.reasons == {"refused": 2}
    assert all("text" not in d for d in wifi.documents)  # document metadata only, as in a trace
    airline = next(g for g in groups if "airline" in g.question.lower())
    assert "thumbs down" in airline.reasons and airline.items[0].comment == "wrong policy"

    gap = record_gap(files, wifi, "ian", note="no office wifi page")
    assert gap["provenance"]["reviewer"] == "ian" and gap["asked"] == 2

    with pytest.raises(SourceError, match="cannot read"):
        accept_golden(files, airline, "hr/salary-bands.md", ["hr-compensation", "executives"], "ian")
    record = accept_golden(files, airline, "company/travel-policy.docx", ["everyone"], "ian")
    assert record["provenance"]["reasons"] == airline.reasons
    added = load_golden(files.golden).queries[-1]
    assert added.text == disliked.question and set(added.relevant) == {"company/travel-policy.docx"}

    left = collect(log.read(), _feedback(tmp_path), files.decided(), start="2000-01-01", low_evidence_margin=0.0)
    assert {i.question for i in left}.isdisjoint({i.question for i in wifi.items + airline.items})


def test_answers_shown_yellow_join_the_queue_ranked_with_the_check_that_failed() -> None:
    def answered(question: str, label: str | None, evidence: float = 0.9) -> LoggedQuestion:
        entry = asked("dana", ["everyone"], question, [hit(HOLIDAY_DOC)])
        return dataclasses.replace(entry, outcome="answered", evidence=evidence, label=label)

    log = [
        answered("How many floating holidays do I get?", "supported"),  # green: nothing to review
        answered("what's the per diem in the EU", "quoted"),
        answered("is juneteenth paid", "unsupported"),
        answered("when does the office open", "supported", evidence=0.66),  # barely cleared the gate
        asked("dana", ["everyone"], "wifi password lisbon", [hit(HOLIDAY_DOC)]),
    ]
    queue = collect(log, [], set(), start="2000-01-01", low_evidence_margin=0.05)
    reasons = {i.question: i.reasons for i in queue}
    assert "How many floating holidays do I get?" not in reasons
    assert reasons["what's the per diem in the EU"] == ["beyond its quotes"]
    assert reasons["is juneteenth paid"] == ["not supported"]
    groups = group_similar(queue, shared_embedder().embed_documents, threshold=0.99)
    order = [next(iter(g.reasons)) for g in groups]
    assert order.index("not supported") < order.index("refused") < order.index("low evidence")  # most telling first


def _feedback(data_dir: Path) -> list[Feedback]:
    from assistant.feedback import read_feedback

    return read_feedback(data_dir)


def test_a_training_item_from_review_passes_the_tuning_rules(tmp_path: Path) -> None:
    from evals.review import ReviewGroup, ReviewItem
    from tuning.items import load_items

    files = review_files(tmp_path)
    rules = TrainingRules.for_repo(REPO, ["everyone"])

    def group(question: str) -> ReviewGroup:
        return ReviewGroup(
            [
                ReviewItem(
                    "id" + str(abs(hash(question)))[:8],
                    question,
                    "dana",
                    ["everyone"],
                    "2026-12-01T10:00:00",
                    ["refused"],
                    [],
                )
            ]
        )

    held_out = group("How many floating holidays do I get each year?")  # a golden question
    with pytest.raises(SourceError, match="held-out"):
        accept_training(files, held_out, rules, "ian", doc_id=None, doc_groups=None, doc_text="")
    restricted = group("What is the top of the E4 band in Rotterdam?")
    with pytest.raises(SourceError, match="allow-list"):
        accept_training(
            files,
            restricted,
            rules,
            "ian",
            doc_id="hr/salary-bands.md",
            doc_groups=["hr-compensation", "executives"],
            doc_text="E4 tops out at 190k.",
            answer="190k",
            quotes=["E4 tops out at 190k."],
        )
    paraphrase = group("Who owns the company holiday calendar")  # an item of the set, case and mark aside
    with pytest.raises(SourceError, match="near-duplicate"):
        accept_training(files, paraphrase, rules, "ian", doc_id=None, doc_groups=None, doc_text="")
    fresh = group("Do the canteen opening hours change in August?")
    from_canteen = functools.partial(
        accept_training,
        files,
        fresh,
        rules,
        "ian",
        doc_id="company/canteen.md",
        doc_groups=["everyone"],
        doc_text="The canteen opens at 8:00. In August it opens at 9:00.",
    )
    with pytest.raises(SourceError, match="not verbatim"):
        from_canteen(answer="Yes, 9:00.", quotes=["In August it opens at 9."])
    record = from_canteen(answer="Yes, it opens at 9:00.", quotes=["In August it opens at 9:00."])
    assert record["provenance"]["reviewer"] == "ian"
    assert load_items(files.training_items, "handbook")[-1].question == fresh.question


# -- the re-ingest impact report --------------------------------------------------------------------
def test_the_impact_report_follows_an_edit_a_delete_a_move_and_a_regroup(settings: Settings, handbook: Path) -> None:
    assert ingest(settings, handbook).ok
    (handbook / "company" / "holidays.md").write_text("# Holidays\n\nEvery Friday is off.\n", encoding="utf-8")
    (handbook / "company" / "expense-basics.md").unlink()
    (handbook / "company" / "travel").mkdir()
    (handbook / "company" / "travel-policy.docx").rename(handbook / "company" / "travel" / "travel-policy.docx")
    policy = handbook / "access.yaml"
    policy.write_text(
        policy.read_text().replace(
            '- match: "security/password-and-mfa-policy.*"\n    groups: [everyone]',
            '- match: "security/password-and-mfa-policy.*"\n    groups: [security]',
        )
    )
    watcher = GoldenImpact(load_golden(GOLDEN))
    with runtime(settings) as components:
        summary = run_ingest(components, handbook, "handbook", watcher=watcher)
    report = watcher.report
    assert summary.ok and report is not None
    by_doc = {doc: item for item in report.items for doc in item.touched}
    assert by_doc["company/holidays.md"].touched == {"company/holidays.md": "changed"}
    deleted = by_doc["company/expense-basics.md"]
    assert deleted.deleted == ["company/expense-basics.md"] and deleted.recall_after == 0.0
    moved = by_doc["company/travel-policy.docx"]
    assert moved.moved == {"company/travel-policy.docx": "company/travel/travel-policy.docx"}
    unreadable = [i for i in report.items if "security/password-and-mfa-policy.md" in i.touched]
    assert {tuple(i.groups) for i in unreadable} == {("everyone",), ("everyone", "hr")}
    expecting = [q for q in load_golden(GOLDEN).queries if q.relevant]
    assert report.questions == len(report.items) < len(expecting)  # only those the sync could affect were asked
    assert report.skipped == len(expecting) - report.questions
    assert all(i.unreadable == ["security/password-and-mfa-policy.md"] for i in unreadable)
    assert all(i.recall_before == 1.0 for i in unreadable) and all(i.recall_after == 0.0 for i in unreadable)
    untouched = {q.qid for q in load_golden(GOLDEN).queries} - {i.qid for i in report.items}
    assert len(untouched) == len(load_golden(GOLDEN).queries) - len(report.items) > 20  # only touched ones re-ran


def test_ingest_prints_saves_and_shows_the_impact_report(tmp_path: Path, handbook: Path) -> None:
    data = tmp_path / "data"
    assert run("ingest", str(handbook), data_dir=data).returncode == 0
    (handbook / "company" / "expense-basics.md").unlink()
    result = run("ingest", str(handbook), data_dir=data)
    assert result.returncode == 0, result.stderr
    assert "golden set handbook-golden" in result.stdout and "2 stale" in result.stdout
    [saved] = (data / "eval-runs").glob("*-handbook-impact.json")
    assert json.loads(saved.read_text())["counts"]["stale"] == 2


def test_an_impact_report_is_saved_and_sent_to_langfuse_as_a_trace_with_its_counts(
    settings: Settings, captured: Captured, receiver: Receiver
) -> None:
    from evals.impact import ImpactItem, ImpactReport, publish

    item = ImpactItem(
        "g:1", "Where is Reno?", ["everyone"], ["a.md"], {"a.md": "deleted"}, 1.0, 0.0, 1, None, deleted=["a.md"]
    )
    report = ImpactReport("handbook", "handbook-golden", 45, [item])
    path = publish(report, settings, Tracer(TracingSettings(), client=captured.client))
    assert json.loads(path.read_text())["counts"] == {
        "touched": 1,
        "worse": 1,
        "better": 0,
        "stale": 1,
        "unreadable": 0,
    }
    [span] = [s for s in captured.spans().values() if s.name == "ingest-impact"]
    trace_id = format(span.context.trace_id, "032x")
    sent = {s["name"]: s["value"] for s in receiver.scores() if s.get("traceId") == trace_id}
    assert sent["impact-stale"] == 1.0 and sent["impact-worse"] == 1.0 and sent["impact-touched"] == 1.0


def test_the_review_command_lists_the_queue_and_records_a_gap(tmp_path: Path) -> None:
    from dataclasses import asdict

    data = tmp_path / "data"
    data.mkdir()
    hostile = "\x1b[2J" + OUT_OF_CORPUS  # a question that would clear the reviewer's terminal
    asked = LoggedQuestion(
        "dana", ["everyone"], hostile, "handbook", "refused-recall", 0.4, 0.65, [], [], False, 0, 0, 0, None, None
    )
    (data / "questions.jsonl").write_text(json.dumps(asdict(asked)) + "\n", encoding="utf-8")
    anonymous = run("review", data_dir=data)
    assert anonymous.returncode == 1 and "say who is asking" in anonymous.stderr
    listed = run("review", "--user", "ian", "--json", str(tmp_path / "queue.json"), data_dir=data)
    assert listed.returncode == 0, listed.stderr
    assert "\x1b" not in listed.stdout and "\\x1b[2J" in listed.stdout  # shown as an escape, never obeyed
    [group] = json.loads((tmp_path / "queue.json").read_text())
    assert group["question"] == hostile and group["reasons"] == {"refused": 1}
    recorded = run("review", "gap", group["id"], "--note", "no wifi page", "--user", "ian", data_dir=data)
    assert recorded.returncode == 0, recorded.stderr
    [gap] = [json.loads(line) for line in (data / "corpus-gaps.jsonl").read_text().splitlines()]
    assert gap["note"] == "no wifi page" and gap["provenance"]["reviewer"] == "ian"
    again = run("review", "dismiss", group["id"], "--user", "ian", data_dir=data)  # decided: no longer open
    assert again.returncode == 1 and "no open review group" in again.stderr


# -- what a reviewer may see ------------------------------------------------------------------------
DEV_USERS = load_dev_users(REPO / "samples" / "users.yaml")
IAN, CARLOS = DEV_USERS["ian"], DEV_USERS["carlos"]  # engineering / hr-compensation
RITA = DEV_USERS["rita"]  # hr, hr-compensation and assistant-engineers


def test_a_reviewer_sees_a_question_only_where_they_may_read_all_its_documents(settings: Settings) -> None:
    record_documents(settings)
    # Asked by hr (whose groups Carlos holds): this group is about a re-grouped document, not its asker.
    regrouped = asked("hannah", ["everyone", "hr"], "Is parental leave paid?", [hit("hr/parental-leave.md")])
    regrouped.retrieved[0]["groups"] = ["everyone"]  # logged before the document was re-grouped to hr
    unknown = asked("dana", ["everyone"], "Where is the reorg memo?", [{"rank": 1, "doc_id": "drafts/x.md"}])
    items = collect([*carlos_and_dana(), regrouped, unknown], [], set(), start="2000-01-01", low_evidence_margin=0.0)
    groups = [ReviewGroup([item]) for item in items]
    by_question = {g.question: g.id for g in groups}
    documents = DocumentGroups(settings)

    def view(reviewer: Principal) -> ReviewQueue:
        return for_reviewer(groups, reviewer, documents, Pseudonyms(settings.data_dir), "handbook")

    ians = view(IAN)
    assert [g.question for g in ians.groups] == [HOLIDAY_QUESTION]
    salary = next(r for r in ians.redacted if r.id == by_question[SALARY_QUESTION])
    assert (salary.asked, salary.reasons, salary.documents, salary.unreadable) == (1, {"refused": 1}, 2, 1)
    assert {r.id for r in ians.redacted} == {by_question[q] for q in by_question if q != HOLIDAY_QUESTION}
    shown = json.dumps(ians.to_json())
    for secret in (SALARY_QUESTION, SALARY_TITLE, SALARY_DOC, "carlos", "dana", "hr-compensation", "parental"):
        assert secret not in shown
    [dana] = ians.groups[0].items
    assert dana.user_id.startswith("asker-") and dana.user_id == Pseudonyms(settings.data_dir).of("dana")
    assert (settings.data_dir / "pseudonym.key").stat().st_mode & 0o777 == 0o600

    carlos = view(CARLOS)  # hr-compensation: may read the salary bands (and hr's parental leave page)
    visible = {g.question: g for g in carlos.groups}
    assert set(visible) == {SALARY_QUESTION, HOLIDAY_QUESTION, "Is parental leave paid?"}
    assert SALARY_TITLE in json.dumps(visible[SALARY_QUESTION].to_json())
    assert visible[SALARY_QUESTION].items[0].user_id == Pseudonyms(settings.data_dir).of("carlos") != "carlos"
    assert [r.id for r in carlos.redacted] == [by_question["Where is the reorg memo?"]]  # unknown: fail closed
    assert Pseudonyms(settings.data_dir / "elsewhere").of("dana") != dana.user_id  # keyed per data directory


LAYOFF_QUESTION = "Is Priya Raman on the layoff list?"


@pytest.mark.parametrize("retrieved", [[], [hit(HOLIDAY_DOC)]], ids=["retrieved-nothing", "retrieved-public"])
def test_a_question_is_shown_only_to_reviewers_holding_every_group_its_asker_held(
    settings: Settings, retrieved: list[dict[str, Any]]
) -> None:
    record_documents(settings)
    layoff = asked("hannah", ["everyone", "hr"], LAYOFF_QUESTION, retrieved)  # her question says what hr knows
    [item] = collect([layoff], [], set(), start="2000-01-01", low_evidence_margin=0.0)
    group = ReviewGroup([item])
    pseudonyms = Pseudonyms(settings.data_dir)

    ians = for_reviewer([group], IAN, DocumentGroups(settings), pseudonyms, "handbook")  # every document, no hr
    assert ians.groups == [] and [r.id for r in ians.redacted] == [group.id]
    [redacted] = ians.redacted
    assert (redacted.unreadable, redacted.outside_askers) == (0, 1)
    assert "asked by someone with groups you do not hold" in redacted.why
    shown = json.dumps(ians.to_json())
    for secret in (LAYOFF_QUESTION, "Priya", "hannah", '"hr"', pseudonyms.of("hannah")):
        assert secret not in shown

    ritas = for_reviewer([group], RITA, DocumentGroups(settings), pseudonyms, "handbook")  # holds hr
    assert ritas.redacted == [] and [g.question for g in ritas.groups] == [LAYOFF_QUESTION]


def test_a_shown_group_names_its_asker_by_pseudonym_without_their_groups(settings: Settings) -> None:
    record_documents(settings)
    layoff = asked("hannah", ["everyone", "hr"], LAYOFF_QUESTION, [])
    groups = [ReviewGroup(collect([layoff], [], set(), start="2000-01-01", low_evidence_margin=0.0))]
    queue = for_reviewer(groups, RITA, DocumentGroups(settings), Pseudonyms(settings.data_dir), "handbook")
    [shown] = json.loads(dumps(queue))  # what `assistant review --json` writes
    [item] = shown["items"]
    assert shown["question"] == LAYOFF_QUESTION and item["user_id"] == Pseudonyms(settings.data_dir).of("hannah")
    assert "groups" not in item and '"hr"' not in dumps(queue) and "hannah" not in dumps(queue)
    assert queue.groups[0].items[0].groups == ["everyone", "hr"]  # kept for decisions (golden: asked with them)


def test_a_thumbs_down_without_its_logged_question_is_redacted_for_every_reviewer(settings: Settings) -> None:
    record_documents(settings)
    disliked = Feedback("hannah", LAYOFF_QUESTION, False, "wrong", None, None, None, [])  # not in the log
    contractor = asked("victor", [], "Where do I badge in?", [])  # logged: known to be in no group
    items = collect([contractor], [disliked], set(), start="2000-01-01", low_evidence_margin=0.0)
    groups = {i.question: ReviewGroup([i]) for i in items}
    for reviewer in (IAN, RITA):  # fail closed: nobody can be shown to hold groups no one knows
        queue = for_reviewer(
            list(groups.values()), reviewer, DocumentGroups(settings), Pseudonyms(settings.data_dir), "handbook"
        )
        assert [g.question for g in queue.groups] == ["Where do I badge in?"]  # no group: nothing to carry
        [redacted] = queue.redacted
        assert redacted.id == groups[LAYOFF_QUESTION].id and redacted.unknown_askers == 1
        assert "feedback without the asker's groups" in redacted.why
        assert LAYOFF_QUESTION not in json.dumps(queue.to_json())
    assert groups[LAYOFF_QUESTION].items[0].groups is None  # unknown, unlike Victor's empty list


def test_the_review_command_redacts_for_the_reviewer_and_refuses_their_decisions(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_log(data, carlos_and_dana())  # no sync state: the groups logged with each retrieved document count
    listed = run("review", "--user", "ian", "--json", str(tmp_path / "ian.json"), data_dir=data)
    assert listed.returncode == 0, listed.stderr
    queue = json.loads((tmp_path / "ian.json").read_text())
    for secret in (SALARY_QUESTION, SALARY_TITLE, SALARY_DOC, "carlos", "hr-compensation"):
        assert secret not in listed.stdout and secret not in json.dumps(queue)
    [hidden] = [g for g in queue if g.get("redacted")]
    assert (hidden["asked"], hidden["documents"], hidden["unreadable"]) == (1, 2, 1)
    assert "outside your groups" in hidden["why"] and hidden["id"] in listed.stdout
    refused = run("review", "gap", hidden["id"], "--user", "ian", data_dir=data)
    assert refused.returncode == 1 and "outside your groups" in refused.stderr
    assert SALARY_QUESTION not in refused.stderr

    hr = "everyone,hr,hr-compensation"  # every group Carlos held when he asked
    seen = run("review", "--groups", hr, "--json", str(tmp_path / "hr.json"), data_dir=data)
    assert seen.returncode == 0, seen.stderr
    [salary] = [g for g in json.loads((tmp_path / "hr.json").read_text()) if g["id"] == hidden["id"]]
    assert salary["question"] == SALARY_QUESTION and salary["documents"][0]["title"] == SALARY_TITLE
    assert salary["items"][0]["user_id"].startswith("asker-")
    assert all("groups" not in item for item in salary["items"])  # the asker's groups would help name them
    decided = run("review", "gap", hidden["id"], "--user", "carlos", data_dir=data)
    assert decided.returncode == 0, decided.stderr
    [gap] = [json.loads(line) for line in (data / "corpus-gaps.jsonl").read_text().splitlines()]
    assert gap["provenance"]["reviewer"] == "carlos"


def test_saved_runs_are_redacted_for_a_reviewer(settings: Settings) -> None:
    record_documents(settings)
    folder = settings.eval_runs_dir
    save_retrieval_run(folder)
    sample = {
        "question": SALARY_QUESTION,
        "answer": "E4 tops out at $198,000 [1]",
        "reference": "$198,000",
        "groups": ["hr-compensation"],
        "cited": [SALARY_DOC],
        "relevant": [SALARY_DOC],
        "trace_id": "t1",
    }
    save_run(folder, "2026-01-02T10:00:00", ANSWERS_SUFFIX, {"aggregate": {}, "samples": [sample]})
    leak = {"user": "dana", "question": SALARY_TITLE, "doc_id": HOLIDAY_DOC, "doc_groups": ["everyone"]}
    save_run(folder, "2026-01-02T10:00:00", LEAKS_SUFFIX, {"collection": "handbook", "leaks": [leak]})
    runs = read_saved_runs(folder)

    ians = redact_runs(runs, IAN, DocumentGroups(settings), "handbook")
    salary, holidays = ians.retrieval[0]["queries"]
    assert salary["question"] == "(redacted)" and salary["top"] == salary["relevant"] == []
    assert salary["metrics"] == {"ndcg@10": 1.0, "recall@10": 1.0} and "outside your groups" in salary["redacted"]
    assert holidays["question"] == HOLIDAY_QUESTION and "redacted" not in holidays
    [answer] = ians.answers[0]["samples"]
    assert answer["answer"] == "(redacted)" and answer["reference"] is None and answer["trace_id"] is None
    [probe] = ians.leaks[0]["leaks"]  # a readable document, found by asking for a restricted one's title
    assert probe["question"] == probe["doc_id"] == "(redacted)" and probe["user"] == "dana"
    shown = json.dumps([ians.retrieval, ians.answers, ians.leaks])
    for secret in (SALARY_QUESTION, SALARY_TITLE, SALARY_DOC, "198,000", "hr-compensation"):
        assert secret not in shown

    carlos = redact_runs(runs, CARLOS, DocumentGroups(settings), "handbook")
    assert carlos.retrieval[0]["queries"][0]["question"] == SALARY_QUESTION
    assert carlos.answers[0]["samples"][0]["answer"] == sample["answer"]
    assert carlos.leaks[0]["leaks"][0]["question"] == SALARY_TITLE


def test_corpus_gaps_are_shown_only_to_owners_who_may_read_what_they_retrieved(settings: Settings) -> None:
    from evals.review import files_of, gaps_for, record_gap

    record_documents(settings)
    files = files_of(settings)
    for item in collect(carlos_and_dana(), [], set(), start="2000-01-01", low_evidence_margin=0.0):
        record_gap(files, ReviewGroup([item]), "rita")
    documents = DocumentGroups(settings)
    shown, hidden = gaps_for(IAN, files, documents, "handbook")
    assert [g["question"] for g in shown] == [HOLIDAY_QUESTION] and hidden == 1
    shown, hidden = gaps_for(CARLOS, files, documents, "handbook")
    assert {g["question"] for g in shown} == {HOLIDAY_QUESTION, SALARY_QUESTION} and hidden == 0
    files.corpus_gaps.write_text(json.dumps({"question": "old gap", "asked": 1}) + "\n")  # recorded before
    assert gaps_for(CARLOS, files, documents, "handbook") == ([], 1)  # fail closed


def test_a_corpus_gap_asked_by_someone_in_groups_the_owner_lacks_is_hidden_even_with_nothing_retrieved(
    settings: Settings,
) -> None:
    """The review queue's rule holds on the corpus page too: "Is <name> on the layoff list?" asked by an hr
    member and recorded as a gap was shown to every corpus owner."""
    from assistant.access import Principal
    from evals.review import files_of, gaps_for, record_gap

    files = files_of(settings)
    layoff = asked("hannah", ["everyone", "hr"], "Is Priya Raman on the layoff list?", [])
    [item] = collect([layoff], [], set(), start="2000-01-01", low_evidence_margin=0.0)
    record_gap(files, ReviewGroup([item]), "rita")
    owner = Principal.of("olivia", ["everyone", "corpus-owners"])
    assert gaps_for(owner, files, DocumentGroups(settings), "handbook") == ([], 1)
    shown, hidden = gaps_for(RITA, files, DocumentGroups(settings), "handbook")
    assert [g["question"] for g in shown] == ["Is Priya Raman on the layoff list?"] and hidden == 0
