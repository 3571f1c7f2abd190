"""Golden sets as Langfuse datasets, and evaluations as Langfuse experiments (dataset runs).

`push_dataset` makes one dataset item per golden question. An item's id is derived from the dataset name, the
question and the asker's groups, so re-pushing an edited set updates items in place (a changed reference answer
or expected document) and never duplicates them; an item whose question left the file is archived.

`run_experiment` runs the dataset's active items through the same per-question function as the local
evaluation (`evals.retrieval.evaluate_query`, `evals.answers.answer_query`): Langfuse traces each item, links it
to the run, and stores the item's metrics as scores and the run's aggregates as run-level scores. The run is
named by what was measured (git commit, adapter, index version), so runs compare side by side.

What leaves the process follows the tracing rules (`assistant.tracing`): item inputs carry the question and the
asker's groups, expected outputs the document ids; reference answers and generated answers are document text and
are sent only with `tracing.include_document_text`.
"""

from __future__ import annotations

import functools
import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from langfuse.api import DatasetStatus

from assistant.errors import TracingError
from assistant.retriever import Retriever
from assistant.settings import RetrievalMode
from evals.answers import AnswerSample, Conversations, aggregate, answer_query, sample_scores
from evals.datasets import EvalQuery, EvalSet
from evals.metrics import mean_scores
from evals.retrieval import EvalRun, QueryResult, evaluate_query

if TYPE_CHECKING:
    from langfuse import Langfuse

    from assistant.answering import Answerer

# The SDK's enum reads as plain str to mypy; these are the members, typed as the SDK's signatures expect.
ACTIVE = cast(DatasetStatus, DatasetStatus.ACTIVE)
ARCHIVED = cast(DatasetStatus, DatasetStatus.ARCHIVED)
_ITEM_NAMESPACE = uuid.UUID("3b0c1f0e-6a47-4d0b-9f6e-6d1f4b7c2a11")  # fixed: ids stay stable across pushes


def item_id(dataset: str, query: EvalQuery) -> str:
    """Stable across pushes: the same question asked by the same groups is the same item."""
    key = "\x00".join((dataset, " ".join(query.text.lower().split()), ",".join(sorted(query.groups))))
    return str(uuid.uuid5(_ITEM_NAMESPACE, key))


def item_fields(query: EvalQuery, should_refuse: bool, include_text: bool) -> dict[str, Any]:
    expected: dict[str, Any] = {"relevant": sorted(query.relevant)}
    if include_text and query.reference:
        expected["answer"] = query.reference
    return {
        "input": {"question": query.text, "groups": list(query.groups)},
        "expected_output": expected,
        # No line number: an item must not change because a line above it was removed.
        "metadata": {"golden_set": query.qid.rsplit(":", 1)[0], "should_refuse": should_refuse},
    }


@dataclass
class PushReport:
    dataset: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    archived: int = 0

    def line(self) -> str:
        return (
            f"dataset {self.dataset}: {self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.archived} archived"
        )


def push_dataset(
    client: Langfuse, evalset: EvalSet, name: str, *, should_refuse: bool = False, include_text: bool = False
) -> PushReport:
    """Create or update the Langfuse dataset `name` from a golden set (see the module doc)."""
    from langfuse.api.core import ApiError

    report = PushReport(name)
    try:
        existing = {item.id: item for item in client.get_dataset(name).items}
    except ApiError as exc:
        if exc.status_code != 404:
            raise TracingError(f"Langfuse refused to read dataset {name!r}: HTTP {exc.status_code}") from exc
        client.create_dataset(name=name, description=f"golden set {evalset.name}", metadata={"kind": evalset.kind})
        existing = {}
    wanted = {item_id(name, q): q for q in evalset.queries}
    for identifier, query in wanted.items():
        fields = item_fields(query, should_refuse, include_text)
        before = existing.get(identifier)
        if before is not None and _same(before, fields):
            report.unchanged += 1
            continue
        client.create_dataset_item(dataset_name=name, id=identifier, status=ACTIVE, **fields)
        if before is None:
            report.created += 1
        else:
            report.updated += 1
    for identifier, item in existing.items():
        if identifier not in wanted and item.status != ARCHIVED:
            client.create_dataset_item(
                dataset_name=name,
                id=identifier,
                input=item.input,
                expected_output=item.expected_output,
                metadata=item.metadata,
                status=ARCHIVED,
            )
            report.archived += 1
    return report


def _same(item: Any, fields: dict[str, Any]) -> bool:
    return bool(
        item.status == ACTIVE
        and item.input == fields["input"]
        and item.expected_output == fields["expected_output"]
        and item.metadata == fields["metadata"]
    )


@dataclass(frozen=True)
class RunName:
    """What a run measured; its name in Langfuse and its metadata."""

    kind: str  # "retrieval" or "answers"
    git_commit: str
    adapter: str | None
    index_version: str
    created: str

    @property
    def name(self) -> str:
        return (
            f"{self.kind} {self.git_commit[:10]} adapter={self.adapter or 'none'} index={self.index_version} "
            f"{self.created}"
        )

    def metadata(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "git_commit": self.git_commit,
            "adapter": self.adapter or "none",
            "index_version": self.index_version,
        }

    @classmethod
    def now(cls, kind: str, git_commit: str, adapter: str | None, index_version: str) -> RunName:
        return cls(kind, git_commit, adapter, index_version, time.strftime("%Y-%m-%dT%H:%M:%S"))


def index_version(documents: Sequence[tuple[str, str, Sequence[str]]]) -> str:
    """A short digest of what the collection holds (document id, content hash, groups): equal digests, equal
    index contents."""
    digest = hashlib.sha256()
    for doc_id, content_hash, groups in sorted(documents):
        digest.update(f"{doc_id}\x00{content_hash}\x00{','.join(sorted(groups))}\n".encode())
    return digest.hexdigest()[:12]


@dataclass
class ExperimentOutcome:
    dataset: str
    run_name: str
    experiment_id: str | None
    url: str | None
    items: int


Scored = tuple[dict[str, Any], dict[str, float]]  # (the output sent to Langfuse, the item's scores)


def run_experiment(
    client: Langfuse,
    dataset: str,
    evalset: EvalSet,
    run: RunName,
    task: Callable[[EvalQuery], Scored],
    aggregate: Callable[[], dict[str, float]],
) -> ExperimentOutcome:
    """Run `task` on every active item of `dataset` that is a question of `evalset` (pushed just before), as one
    Langfuse dataset run. `task` returns what to send as the item's output and its scores; `aggregate` reads the
    results gathered so far and gives the run-level scores."""
    from langfuse import Evaluation

    by_id = {item_id(dataset, q): q for q in evalset.queries}
    items = [i for i in client.get_dataset(dataset).items if i.status == ACTIVE and i.id in by_id]
    scores: dict[str, dict[str, float]] = {}

    def run_item(*, item: Any, **_: Any) -> dict[str, Any]:
        output, item_scores = task(by_id[item.id])
        scores[item.id] = item_scores
        return {"item": item.id, **output}

    def item_scores(*, output: Any, **_: Any) -> list[Evaluation]:
        identifier = output.get("item") if isinstance(output, dict) else None
        return [Evaluation(name=k, value=v) for k, v in scores.get(str(identifier), {}).items()]

    def run_scores(**_: Any) -> list[Evaluation]:
        return [Evaluation(name=k, value=v) for k, v in aggregate().items()]

    result = client.run_experiment(
        name=f"{run.kind} on {dataset}",
        run_name=run.name,
        description=f"assistant eval {run.kind} --langfuse",
        data=items,
        task=run_item,
        evaluators=[item_scores],
        run_evaluators=[run_scores],
        max_concurrency=1,  # one model, one CPU budget: items run one after another
        metadata=run.metadata(),
    )
    client.flush()
    return ExperimentOutcome(dataset, run.name, result.experiment_id, result.experiment_url, len(items))


# -- the two experiments the CLI runs ---------------------------------------------------------------
def retrieval_experiment(
    client: Langfuse, retriever: Retriever, golden: EvalSet, dataset: str, run: RunName, mode: RetrievalMode
) -> tuple[ExperimentOutcome, EvalRun]:
    """`assistant eval retrieval --langfuse`: each item ranked as its asker, scored as the local evaluation
    scores it; returns the Langfuse outcome and the same run as a local `EvalRun`."""
    results: list[QueryResult] = []
    started = time.perf_counter()

    def task(query: EvalQuery) -> Scored:
        result = evaluate_query(retriever, query, mode)
        if result is None:
            return {"skipped": "no expected document"}, {}
        results.append(result)
        return {"top": result.top, "relevant": result.relevant}, result.metrics

    outcome = run_experiment(client, dataset, golden, run, task, lambda: mean_scores([r.metrics for r in results]))
    local = EvalRun.of(golden, retriever, mode, results, time.perf_counter() - started)
    local.settings["langfuse"] = {"run": outcome.run_name, "experiment_id": outcome.experiment_id, **run.metadata()}
    return outcome, local


def answers_experiment(
    client: Langfuse,
    answerer: Answerer,
    sets: Sequence[tuple[EvalSet, str, bool]],
    run: RunName,
    include_text: bool,
) -> tuple[list[ExperimentOutcome], list[AnswerSample]]:
    """`assistant eval answers --langfuse`: one dataset run per (set, dataset name, should refuse), each item
    answered and scored as the local evaluation scores it (token F1, cited, citation precision, refusal)."""
    answerer.generator.load()
    samples: list[AnswerSample] = []
    outcomes = []
    for evalset, dataset, should_refuse in sets:
        mine: list[AnswerSample] = []
        conversations = Conversations(answerer, evalset.queries)

        def task(
            query: EvalQuery,
            should_refuse: bool = should_refuse,
            mine: list[AnswerSample] = mine,
            conversations: Conversations = conversations,
        ) -> Scored:
            sample = answer_query(answerer, query, should_refuse, conversations)
            mine.append(sample)
            output: dict[str, Any] = {"refused": sample.refused, "cited": sample.cited, "relevant": sample.relevant}
            if include_text or sample.refused:  # a refusal is a fixed sentence; an answer is document text
                output["answer"] = sample.answer
            return output, sample_scores(sample)

        outcomes.append(run_experiment(client, dataset, evalset, run, task, functools.partial(aggregate, mine)))
        samples += mine
    return outcomes, samples
