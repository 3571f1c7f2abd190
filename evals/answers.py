"""Answer quality: ask every question of a golden set (and of an unanswerable set) through the whole pipeline,
as its asker, and measure what employees notice.

- answered: share of answerable questions that got an answer, not a refusal;
- correct refusals: share of unanswerable questions that were refused (by the recall gate or the model);
- format valid: share of generated answers in the house format (`assistant/house_format.py`; the refusal sentence
  counts);
- cited: share of answers that cite at least one retrieved block;
- cited relevant: share of answers citing a document the golden set marks as answering the question;
- citation precision: share of all citations that point at such a document;
- quotes verbatim: share of answers with at least one quote line, every one found verbatim in its block;
- correct / wrong / refused (sets with key facts): shares of the answerable questions whose answer states every
  key fact in its answer line or its verbatim quotes (`evals/key_facts.py`), that were answered otherwise, or were
  refused; what a user asking them would get. A follow-up ("follows") is asked after its earlier question, in the
  same conversation, as the chat page would ask it;
- labelled supported: share of answers the page labels "Answer supported" (`assistant/answer_support.py`), and
  wrong labelled supported: share of the answerable questions answered wrongly under that label (the worst outcome);
- token F1: SQuAD-style word overlap of the answer statement (quote lines and citations left out: they are
  evidence, scored above) with the reference answer; a refusal scores 0. A cheap proxy for "says the right
  thing" that needs no judge model;
- verdict accuracy (claim sets such as SciFact): a claim with evidence is answered with the right verdict
  (supports / contradicts), a claim without evidence is refused;
- prompt tokens and seconds per generated answer.
With tracing on, each question is a trace and its token F1 becomes a score on it.
"""

from __future__ import annotations

import logging
import re
import statistics
import string
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assistant.access import Principal
from assistant.answering import Answer, Answerer
from assistant.engine import EngineError
from assistant.progress import NO_PROGRESS, Progress
from assistant.prompt import Turn
from evals.datasets import EvalQuery, EvalSet
from evals.key_facts import facts_found, facts_located
from evals.run_files import save_run

log = logging.getLogger(__name__)

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CITATIONS = re.compile(r"\[\d+\]")


def normalise(text: str) -> list[str]:
    text = _CITATIONS.sub(" ", text.lower())
    text = "".join(ch if ch not in string.punctuation or ch in "$%" else " " for ch in text)
    return _ARTICLES.sub(" ", text).split()


def token_f1(prediction: str, reference: str) -> float:
    predicted, expected = normalise(prediction), normalise(reference)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if not predicted or not expected or common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


ANSWERS_SUFFIX = "-answers.json"  # saved runs are told apart by name (evals/saved_runs.py)


@dataclass
class AnswerSample:
    question: str
    groups: list[str]
    should_refuse: bool
    refused: bool
    answer: str
    reference: str | None
    cited: list[str]
    relevant: list[str]
    token_f1: float | None
    removed_citations: int
    seconds: float
    trace_id: str | None
    generated: bool = False  # the model wrote this answer (not a gate refusal)
    format_valid: bool = False
    quotes: int = 0
    quotes_verbatim: int = 0
    prompt_tokens: int = 0
    verdict: str | None = None  # the claim's label (SUPPORT / CONTRADICT) on claim sets
    verdict_correct: bool | None = None
    key_facts: list[str] = field(default_factory=list)
    facts_found: list[bool] = field(default_factory=list)
    correct: bool | None = None  # None: no key facts to judge by, or a question to refuse
    # What a user reads first: every key fact in the answer line alone (its quotes aside). None as for `correct`.
    line_correct: bool | None = None
    # Where the key facts were (None as for `correct`): in the retrieved blocks, the blocks shown to the model, the
    # evidence scorer's top-1 and top-2 sentences; and the stage that lost them (`answer_stage`).
    facts_in_retrieved: bool | None = None
    facts_in_shown: bool | None = None
    facts_in_top1: bool | None = None
    facts_in_top2: bool | None = None
    stage: str | None = None
    follows: str | None = None  # qid of the earlier question it was asked after
    label: str | None = None  # what the reader was told (supported / quoted / unsupported); None: refused
    outcome: str = ""  # answered, or who refused: refused-recall, refused-evidence, refused-model, refused-adapter
    recall_evidence: float | None = None  # the recall gate's evidence score
    evidence_score: float | None = None  # the evidence scorer's best sentence score (None: no scorer)
    answer_score: float | None = None  # the answer verifier's score of the answer line (None: not judged)


@dataclass
class AnswerRun:
    dataset: str
    model: str | None
    adapter: str | None
    aggregate: dict[str, float]
    samples: list[AnswerSample]
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))
    collection: str | None = None  # where the documents are (who may read them: `evals.saved_runs.redact_runs`)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, folder: Path) -> Path:
        return save_run(folder, self.created, f"-{self.dataset}{ANSWERS_SUFFIX}", self.to_json())


def evaluate_answers(
    answerer: Answerer,
    answerable: EvalSet,
    unanswerable: EvalSet | None = None,
    limit: int | None = None,
    progress: Progress = NO_PROGRESS,
) -> AnswerRun:
    questions = [(q, False) for q in answerable.queries[:limit]]
    if unanswerable is not None:
        questions += [(q, True) for q in unanswerable.queries[:limit]]
    answerer.generator.load()  # not inside the first answer's timing
    conversations = Conversations(answerer, answerable.queries)
    progress.start("answers", len(questions))
    samples = []
    for query, should_refuse in questions:
        samples.append(answer_query(answerer, query, should_refuse, conversations))
        progress.advance("answers")
    progress.finish("answers")
    return AnswerRun(
        dataset=answerable.name,
        model=answerer.generator.model_id,
        adapter=answerer.generator.adapter_id,
        aggregate=aggregate(samples),
        samples=samples,
        collection=answerer.retriever.collection,
    )


class Conversations:
    """The answers given so far, so that a follow-up is asked after its earlier question (asked first when it was
    not, e.g. left out by a limit) with that exchange as the conversation's history."""

    def __init__(self, answerer: Answerer, queries: list[EvalQuery]) -> None:
        self.answerer = answerer
        self.queries = {q.qid: q for q in queries}
        self.answers: dict[str, Answer] = {}

    def history(self, query: EvalQuery) -> list[Turn]:
        if query.follows is None or query.follows not in self.queries:
            return []
        earlier = self.queries[query.follows]
        if earlier.qid not in self.answers:
            principal = Principal.of(f"eval:{earlier.qid}", list(earlier.groups))
            self.answers[earlier.qid] = ask(self.answerer, principal, earlier.text, self.history(earlier))
        answer = self.answers[earlier.qid]
        if answer.refused:  # as the chat page: a refused exchange is not carried
            return self.history(earlier)
        return [*self.history(earlier), Turn(earlier.text, answer.answer, tuple(c.doc_id for c in answer.citations))]

    def remember(self, query: EvalQuery, answer: Answer) -> None:
        self.answers[query.qid] = answer


def ask(answerer: Answerer, principal: Principal, question: str, history: list[Turn]) -> Answer:
    """The answer; a question the serving engine failed (down mid-run, a rejected request) counts as refused,
    and the run goes on (an engine down from the start fails the run at `generator.load()`)."""
    try:
        return answerer.ask(principal, question, history)
    except EngineError as exc:
        log.warning("%s: %s", question, exc)
        return Answer.refusal(question, [], 0.0, None, None, "refused-engine")


def answer_query(
    answerer: Answerer, query: EvalQuery, should_refuse: bool, conversations: Conversations | None = None
) -> AnswerSample:
    """One question answered as its asker (after its earlier question, for a follow-up) and scored against its
    reference and key facts."""
    principal = Principal.of(f"eval:{query.qid}", list(query.groups))
    history = conversations.history(query) if conversations is not None else []
    answer = ask(answerer, principal, query.text, history)
    if conversations is not None:
        conversations.remember(query, answer)
    f1 = None
    if query.reference and not should_refuse:
        f1 = 0.0 if answer.refused else token_f1(answer.statement or answer.answer, query.reference)
        tracer = answerer.tracer
        if answer.trace_id and tracer is not None:  # a reference answer is document text
            comment = f"reference: {query.reference}" if tracer.include_document_text else None
            tracer.score(answer.trace_id, "token-f1", f1, comment=comment)
    return AnswerSample(
        question=query.text,
        groups=list(query.groups),
        should_refuse=should_refuse,
        refused=answer.refused,
        answer=answer.answer,
        reference=query.reference,
        cited=[c.doc_id for c in answer.citations],
        relevant=sorted(query.relevant),
        token_f1=f1,
        removed_citations=answer.removed_citations,
        seconds=round(answer.seconds, 3),
        trace_id=answer.trace_id,
        generated=answer.generated,
        format_valid=answer.format_valid,
        quotes=len(answer.quotes),
        quotes_verbatim=sum(q.verbatim for q in answer.quotes),
        prompt_tokens=answer.prompt_tokens,
        verdict=query.verdict,
        verdict_correct=_verdict_correct(query.verdict, answer) if query.verdict is not None else None,
        label=answer.label,
        outcome=answer.outcome,
        recall_evidence=_rounded(answer.recall.evidence.score if answer.recall is not None else None),
        evidence_score=_rounded(answer.evidence_score),
        answer_score=_rounded(answer.support.answer_score if answer.support is not None else None),
        **_correctness(query, answer, should_refuse),
    )


def _rounded(score: float | None) -> float | None:
    return round(score, 4) if score is not None else None


def _correctness(query: EvalQuery, answer: Answer, should_refuse: bool) -> dict[str, Any]:
    if should_refuse or not query.key_facts:
        return {"key_facts": list(query.key_facts), "follows": query.follows}
    return answer_query_correctness(query, answer)


def answer_query_correctness(query: EvalQuery, answer: Answer) -> dict[str, Any]:
    """The verdicts on an answerable question with key facts: line or quotes, line alone, where the facts were."""
    facts = query.key_facts
    line = answer.statement or answer.answer
    quotes = [q.text for q in answer.quotes if q.verbatim]
    found = [] if answer.refused else facts_found(facts, line, quotes)
    blocks = [c.text for c in answer.retrieved]
    located = {
        "facts_in_retrieved": facts_located(facts, blocks),
        "facts_in_shown": facts_located(facts, blocks[: answer.shown]),
        "facts_in_top1": facts_located(facts, answer.top_sentences[:1]),
        "facts_in_top2": facts_located(facts, answer.top_sentences[:2]),
    }
    line_correct = not answer.refused and all(facts_found(facts, line))
    return {
        "key_facts": list(facts),
        "facts_found": found,
        "correct": not answer.refused and all(found),
        "line_correct": line_correct,
        **located,
        "stage": answer_stage(line_correct, answer.outcome, located),
        "follows": query.follows,
    }


STAGES = ("right", "retrieval", "block selection", "gate", "ranking", "reader")


def answer_stage(line_correct: bool, outcome: str, located: dict[str, bool]) -> str:
    """Where an answerable question was lost, first stage first: its facts not retrieved, retrieved but not shown,
    shown but refused before generation (the recall gate, the evidence scorer, the adapter), shown but not in the
    scorer's top sentence, or there and still not stated by the answer line (the reader; a model refusal too)."""
    if line_correct:
        return "right"
    if not located["facts_in_retrieved"]:
        return "retrieval"
    if not located["facts_in_shown"]:
        return "block selection"
    if outcome in ("refused-recall", "refused-evidence", "refused-adapter"):
        return "gate"
    if not located["facts_in_top1"]:
        return "ranking"
    return "reader"


def sample_scores(sample: AnswerSample) -> dict[str, float]:
    """One answer's metrics, as per-item scores of a Langfuse experiment."""
    scores = {"refusal-correct": float(sample.refused == sample.should_refuse)}
    if not sample.should_refuse and not sample.refused:
        cited = [doc in sample.relevant for doc in sample.cited]
        scores["cited"] = float(bool(sample.cited))
        scores["citation-precision"] = sum(cited) / len(cited) if cited else 0.0
        scores["quotes-verbatim"] = float(sample.quotes > 0 and sample.quotes_verbatim == sample.quotes)
    if sample.token_f1 is not None:
        scores["token-f1"] = sample.token_f1
    if sample.generated:
        scores["format-valid"] = float(sample.format_valid)
    if sample.verdict_correct is not None:
        scores["verdict-correct"] = float(sample.verdict_correct)
    if sample.correct is not None:
        scores["correct"] = float(sample.correct)
    for name, value in (
        ("line-correct", sample.line_correct),
        ("facts-in-retrieved", sample.facts_in_retrieved),
        ("facts-in-shown", sample.facts_in_shown),
        ("facts-in-top1", sample.facts_in_top1),
        ("facts-in-top2", sample.facts_in_top2),
    ):
        if value is not None:
            scores[name] = float(value)
    return scores


def aggregate(samples: list[AnswerSample]) -> dict[str, float]:
    answerable = [s for s in samples if not s.should_refuse]
    answered = [s for s in answerable if not s.refused]
    unanswerable = [s for s in samples if s.should_refuse]
    scored = [s.token_f1 for s in answerable if s.token_f1 is not None]

    def share(part: int, whole: int) -> float:
        return part / whole if whole else 0.0

    generated = [s for s in samples if s.generated]
    citations = [doc in s.relevant for s in answered for doc in s.cited]
    figures: dict[str, float] = {}
    judged_facts = [s for s in answerable if s.correct is not None]
    if judged_facts:  # the headline: what the user reads first, the answer line, right or wrong
        line_wrong = sum(not s.refused and not s.line_correct for s in judged_facts)
        figures["line_correct"] = share(sum(bool(s.line_correct) for s in judged_facts), len(judged_facts))
        figures["line_wrong"] = share(line_wrong, len(judged_facts))
    figures |= {
        "answered": share(len(answered), len(answerable)),
        "correct_refusals": share(sum(s.refused for s in unanswerable), len(unanswerable)),
        "format_valid": share(sum(s.format_valid for s in generated), len(generated)),
        "cited": share(sum(bool(s.cited) for s in answered), len(answered)),
        "cited_relevant": share(sum(bool(set(s.cited) & set(s.relevant)) for s in answered), len(answered)),
        "citation_precision": share(sum(citations), len(citations)),
        "quotes_verbatim": share(sum(s.quotes > 0 and s.quotes_verbatim == s.quotes for s in answered), len(answered)),
        "token_f1": sum(scored) / len(scored) if scored else 0.0,
        "removed_citations": float(sum(s.removed_citations for s in samples)),
        "prompt_tokens": statistics.fmean(s.prompt_tokens for s in generated) if generated else 0.0,
        "seconds_per_answer": statistics.fmean(s.seconds for s in generated) if generated else 0.0,
    }
    if judged_facts:  # the answer line or its quotes, right, wrong, or refused
        figures["correct"] = share(sum(bool(s.correct) for s in judged_facts), len(judged_facts))
        figures["wrong"] = share(sum(not s.refused and not s.correct for s in judged_facts), len(judged_facts))
        figures["refused"] = share(sum(s.refused for s in judged_facts), len(judged_facts))
        # The worst outcome: a wrong answer the page labels "Answer supported".
        wrong_supported = sum(not s.refused and not s.correct and s.label == "supported" for s in judged_facts)
        figures["wrong_labelled_supported"] = share(wrong_supported, len(judged_facts))
        for where in ("retrieved", "shown", "top1", "top2"):  # fact-level retrieval: where the key facts were
            found = sum(bool(getattr(s, f"facts_in_{where}")) for s in judged_facts)
            figures[f"facts_in_{where}"] = share(found, len(judged_facts))
        for stage in STAGES[1:]:  # the stage that lost each answer whose line is not right
            figures[f"lost_at_{stage.replace(' ', '_')}"] = share(
                sum(s.stage == stage for s in judged_facts), len(judged_facts)
            )
    figures["labelled_supported"] = share(sum(s.label == "supported" for s in answered), len(answered))
    judged = [s.verdict_correct for s in samples if s.verdict_correct is not None]
    if judged:
        figures["verdict_accuracy"] = share(sum(judged), len(judged))
    return figures


def _verdict_correct(label: str, answer: Answer) -> bool:
    """A claim with evidence needs the right verdict in the answer; one without (label "") needs a refusal."""
    if not label:
        return answer.refused
    if answer.refused:
        return False
    said = answer.statement.lower() or answer.answer.lower()
    supports, contradicts = "support" in said, "contradict" in said
    return supports != contradicts and supports == (label == "SUPPORT")
