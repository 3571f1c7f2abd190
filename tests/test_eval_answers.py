"""Answer-quality evaluation: the metric, the run over real retrieval with a tiny generator, scores in Langfuse, and
`assistant eval answers` as a person runs it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from assistant.errors import SourceError
from assistant.generator import Generator
from assistant.settings import GeneratorSettings, Settings, TracingSettings
from assistant.tracing import Tracer
from evals.answers import AnswerSample, Conversations, aggregate, evaluate_answers, token_f1
from evals.datasets import load_golden
from tests.conftest import Captured, Receiver, run, runtime


def test_token_f1_ignores_case_punctuation_articles_and_citations() -> None:
    assert token_f1("Two floating holidays [1].", "two floating holidays") == 1.0
    assert token_f1("The answer is $75.", "$75") == pytest.approx(2 * (1 / 3) * 1 / (1 / 3 + 1))
    assert token_f1("", "anything") == 0.0
    assert token_f1("nothing in common", "different words") == 0.0


def write_sets(tmp_path: Path) -> tuple[Path, Path]:
    golden = [
        {
            "question": "How many floating holidays do I get each year?",
            "relevant": ["company/holidays.md"],
            "groups": ["everyone"],
            "answer": "Two floating holidays per calendar year.",
            "key_facts": ["two floating holidays"],
        },
        {  # a contractor with no groups: the gate refuses, so the answer scores 0
            "question": "How many floating holidays do I get each year?",
            "relevant": ["company/holidays.md"],
            "groups": [],
            "answer": "Two floating holidays per calendar year.",
            "key_facts": ["two floating holidays"],
        },
    ]
    unanswerable = [
        {"question": "What's the wifi password at the Lisbon office?", "relevant": [], "groups": ["everyone"]}
    ]
    paths = tmp_path / "golden.jsonl", tmp_path / "none.jsonl"
    for path, rows in zip(paths, (golden, unanswerable), strict=True):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return paths


def test_answer_run_measures_refusals_citations_and_f1_and_scores_traces(
    handbook_index: Settings,
    tiny_model: Path,
    tmp_path: Path,
    captured: Captured,
    receiver: Receiver,
) -> None:
    golden, none = write_sets(tmp_path)
    generator = Generator(GeneratorSettings(model=str(tiny_model), device="cpu", max_new_tokens=6), tmp_path)
    tracer = Tracer(TracingSettings(), client=captured.client)
    with runtime(handbook_index, generator=generator, tracer=tracer) as components:
        result = evaluate_answers(components.answerer(), load_golden(golden), load_golden(none))
    answered, contractor, unanswerable = result.samples
    assert not answered.refused and answered.token_f1 is not None and answered.trace_id
    assert contractor.refused and contractor.token_f1 == 0.0
    assert unanswerable.should_refuse and unanswerable.refused and unanswerable.token_f1 is None
    assert result.aggregate["answered"] == 0.5 and result.aggregate["correct_refusals"] == 1.0
    # Where the key fact was, through the real pipeline: retrieved (and read) for Dana; nothing for the contractor.
    assert answered.facts_in_retrieved and answered.facts_in_shown and answered.line_correct is not None
    assert answered.stage != "retrieval" and answered.facts_in_top2 is not None
    assert contractor.facts_in_retrieved is False and contractor.stage == "retrieval"
    assert result.aggregate["lost_at_retrieval"] == 0.5
    tracer.flush()
    scores = [s for r in receiver.requests if r["path"] == "/api/public/scores" for s in r["body"]]
    f1 = {(s["traceId"], s["name"]) for s in scores if s["name"] == "token-f1"}
    assert f1 == {(answered.trace_id, "token-f1"), (contractor.trace_id, "token-f1")}  # only answerable questions
    recall = {s["traceId"] for s in scores if s["name"] == "recall-answerable"}  # every question carries its check
    assert recall == {answered.trace_id, contractor.trace_id, unanswerable.trace_id}


def test_eval_answers_command(handbook_index: Settings, tiny_model: Path, tmp_path: Path) -> None:
    golden, none = write_sets(tmp_path)
    data = tmp_path / "data"
    shutil.copytree(handbook_index.data_dir, data)
    out = tmp_path / "run.json"
    result = run(
        "eval", "answers", "--answerable", str(golden), "--unanswerable", str(none), "--json", str(out),
        data_dir=data,
        extra_env={"ASSISTANT_GENERATOR__MODEL": str(tiny_model), "ASSISTANT_GENERATOR__MAX_NEW_TOKENS": "4"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    assert saved["model"] == str(tiny_model) and len(saved["samples"]) == 3
    assert set(saved["aggregate"]) >= {"answered", "correct_refusals", "cited", "cited_relevant", "token_f1"}
    assert "run saved to" in result.stdout


def test_a_follow_up_is_asked_after_its_earlier_question_in_one_conversation(
    handbook_index: Settings, tiny_model: Path, tmp_path: Path
) -> None:
    rows = [
        {
            "question": "How many floating holidays do I get?",
            "relevant": ["company/holidays.md"],
            "groups": ["everyone"],
        },
        {"question": "Do they carry over?", "relevant": ["company/holidays.md"], "groups": ["everyone"], "follows": 1},
        {"question": "And if I start in October?", "relevant": [], "groups": ["everyone"], "follows": 2},
    ]
    golden = tmp_path / "golden.jsonl"
    golden.write_text("".join(json.dumps(r) + "\n" for r in rows))
    queries = load_golden(golden).queries
    generator = Generator(GeneratorSettings(model=str(tiny_model), device="cpu", max_new_tokens=4), tmp_path)
    with runtime(handbook_index, generator=generator) as components:
        conversations = Conversations(components.answerer(), queries)
        history = conversations.history(queries[2])  # neither earlier question asked yet: both are, in order
    assert [turn.question for turn in history] == [rows[0]["question"], rows[1]["question"]]
    assert set(conversations.answers) == {queries[0].qid, queries[1].qid}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**rows[0], "follows": 1}) + "\n")
    with pytest.raises(SourceError, match=r"bad\.jsonl:1: .*'follows' must be the line number of an earlier"):
        load_golden(bad)


def sample(refused: bool, correct: bool | None, should_refuse: bool = False) -> AnswerSample:
    return AnswerSample(
        "q", [], should_refuse, refused, "a", None, [], [], None, 0, 0.0, None, correct=correct, key_facts=["x"]
    )


def test_correct_wrong_and_refused_are_shares_of_the_answerable_questions() -> None:
    samples = [sample(False, True), sample(False, False), sample(False, False), sample(True, False)]
    samples += [sample(True, None, should_refuse=True)]  # a question to refuse: counted in correct refusals only
    figures = aggregate(samples)
    assert (figures["correct"], figures["wrong"], figures["refused"]) == (0.25, 0.5, 0.25)
    assert figures["correct_refusals"] == 1.0
    assert "correct" not in aggregate([sample(False, None)])  # no key facts: no verdict, rather than a wrong one


def _block(n: int, text: str) -> object:
    from assistant.retriever import RetrievedChunk

    return RetrievedChunk(n, 1.0, f"c{n}", f"doc{n}.md", f"Doc {n}", f"doc{n}.md", None, ("everyone",), text)


@pytest.mark.parametrize(
    ("line", "outcome", "top", "blocks", "stage", "located"),
    [
        # the line states it: right, whatever the quotes
        (
            "Travel is paid at EUR 62 per day.",
            "answered",
            ("eu staff get eur 62 per day.",),
            1,
            "right",
            (True, True, True, True),
        ),
        # the facts are in no retrieved block
        ("It is $70.", "answered", ("us staff get $70.",), 3, "retrieval", (False, False, False, False)),
        # retrieved, but only in the block the model did not see
        ("It is $70.", "answered", ("us staff get $70.",), 1, "block selection", (True, False, False, False)),
        # shown, but the recall gate refused before generation
        ("I can't find an answer.", "refused-recall", (), 2, "gate", (True, True, False, False)),
        # shown, but the scorer's best sentence is another one (second best holds it)
        (
            "It is $70.",
            "answered",
            ("us staff get $70.", "eu staff get eur 62 per day."),
            2,
            "ranking",
            (True, True, False, True),
        ),
        # first-ranked and shown, and the line still says something else: the reader
        ("It is $70.", "answered", ("eu staff get eur 62 per day.",), 2, "reader", (True, True, True, True)),
    ],
)
def test_each_answer_is_judged_by_its_line_and_placed_at_the_stage_that_lost_it(
    line: str, outcome: str, top: tuple[str, ...], blocks: int, stage: str, located: tuple[bool, ...]
) -> None:
    from assistant.answering import Answer
    from evals.answers import answer_query_correctness
    from evals.datasets import EvalQuery

    texts = ["US staff get $70.", "EU staff get EUR 62 per day.", "Receipts within 30 days."]
    if stage == "retrieval":
        texts = ["US staff get $70.", "Receipts within 30 days."]
    retrieved = [_block(n, t) for n, t in enumerate(texts, 1)]
    if stage == "right":  # the answer's own block first
        retrieved = [retrieved[1], retrieved[0], retrieved[2]]
    answer = Answer("q", line, outcome, [], retrieved, None, None, statement=line, shown=blocks, top_sentences=top)  # type: ignore[arg-type]
    query = EvalQuery("g:1", "What is the EU per diem?", {"doc2.md": 1}, ("everyone",), key_facts=("EUR 62",))
    judged = answer_query_correctness(query, answer)
    assert judged["stage"] == stage
    where = ("facts_in_retrieved", "facts_in_shown", "facts_in_top1", "facts_in_top2")
    assert tuple(judged[name] for name in where) == located
    assert judged["line_correct"] == (stage == "right")


def test_the_answer_line_alone_is_the_headline_beside_line_or_quotes() -> None:
    right_by_quote = sample(False, True)
    right_by_quote.line_correct = False  # the line missed it; a quote carried it
    right_in_line = sample(False, True)
    right_in_line.line_correct = True
    figures = aggregate([right_by_quote, right_in_line, sample(True, False)])
    assert list(figures)[:2] == ["line_correct", "line_wrong"]
    assert (figures["line_correct"], figures["line_wrong"], figures["correct"]) == (1 / 3, 1 / 3, 2 / 3)
