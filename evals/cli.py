"""`assistant eval retrieval|gate|answers|leaks|push-dataset`: measure retrieval, calibrate the recall gate, score
answers, probe access control; runs are saved locally, and with `--langfuse` run as Langfuse experiments on the
golden sets pushed as datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from assistant.cli_options import CollectionOption, JsonFileOption
from assistant.cli_progress import terminal_progress
from assistant.components import Components, open_components
from assistant.errors import ConfigError
from assistant.identity import load_dev_users
from assistant.settings import SAMPLE_GOLDEN, SAMPLE_OUT_OF_CORPUS, RetrievalMode, Settings, load_settings
from evals import gate as gate_calibration
from evals.answers import AnswerRun, aggregate, evaluate_answers
from evals.corpus import prepare_collection
from evals.datasets import EvalSet, load_dataset, load_golden
from evals.experiments import RunName, answers_experiment, index_version, push_dataset, retrieval_experiment
from evals.leaks import probe_leaks
from evals.retrieval import EvalRun, evaluate, load_run, regressions
from evals.run_files import git_commit
from evals.tables import render_aggregate
from ingestion.catalog import read_catalog

AnswerableOption = Annotated[
    Path | None,
    typer.Option(
        help="Golden .jsonl: questions the corpus answers (and reference answers). "
        f"Default: {SAMPLE_GOLDEN} of the checkout (repo_dir)."
    ),
]
UnanswerableOption = Annotated[
    Path | None,
    typer.Option(
        help=f"Golden .jsonl: questions no document answers. Default: {SAMPLE_OUT_OF_CORPUS} of the checkout."
    ),
]


def in_checkout(given: Path | None, sample: Path, settings: Settings) -> Path:
    """A set named on the command line (relative to where it runs), else the checkout's sample set."""
    return given if given is not None else settings.repo_dir / sample


LangfuseOption = Annotated[
    bool,
    typer.Option(
        "--langfuse",
        help="Push the set as a Langfuse dataset and run it as an experiment (per-item and run scores, named by git "
        "commit, adapter and index version); needs tracing configured.",
    ),
]

eval_app = typer.Typer(help="Measure retrieval and answer quality.", no_args_is_help=True)


def langfuse_client(components: Components) -> Any:
    if components.tracer.client is None:
        raise ConfigError(
            "--langfuse needs Langfuse: set LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY and LANGFUSE_BASE_URL"
        )
    return components.tracer.client


def run_name(components: Components, kind: str, collection: str | None) -> RunName:
    """What the run measured: this checkout's commit, the adapter served, the index's contents."""
    documents = read_catalog(components.settings, components.collection(collection)).documents
    version = index_version([(d.doc_id, d.content_hash, d.groups) for d in documents])
    adapter = components.adapter.id if components.adapter is not None else None
    return RunName.now(kind, git_commit(components.settings.repo_dir), adapter, version)


def dataset_name(evalset: EvalSet, name: str | None) -> str:
    return name or evalset.name


@eval_app.command("push-dataset")
def push(
    golden: Annotated[Path, typer.Argument(help="Golden .jsonl to upload or update.")],
    name: Annotated[str | None, typer.Option(help="Dataset name [default: the file's stem].")] = None,
    unanswerable: Annotated[bool, typer.Option(help="The set's questions should be refused.")] = False,
) -> None:
    """Upload a golden set as a Langfuse dataset, or update it: edited items change in place, removed ones are
    archived, nothing is duplicated. Reference answers are sent only with tracing.include_document_text."""
    settings = load_settings()
    evalset = load_golden(golden)
    with open_components(settings) as components:
        report = push_dataset(
            langfuse_client(components),
            evalset,
            dataset_name(evalset, name),
            should_refuse=unanswerable,
            include_text=settings.tracing.include_document_text,
        )
    typer.echo(report.line())


@eval_app.command("retrieval")
def retrieval(
    dataset: Annotated[Path, typer.Option(help="BEIR directory or golden .jsonl.")],
    split: Annotated[str, typer.Option(help="BEIR qrels split.")] = "test",
    mode: Annotated[RetrievalMode, typer.Option(help="Which retrievers run.")] = RetrievalMode.hybrid,
    collection: Annotated[str | None, typer.Option(help="For a golden set [default: store.collection].")] = None,
    baseline: Annotated[Path | None, typer.Option(help="An earlier run's JSON: list queries that got worse.")] = None,
    json_out: JsonFileOption = None,
    langfuse: LangfuseOption = False,
) -> None:
    """nDCG@10, Recall@10/100, MRR@10 per query and overall; saves the run in ASSISTANT_DATA_DIR/eval-runs."""
    settings = load_settings()
    console = Console()
    data = load_dataset(dataset, split)
    with open_components(settings) as components:
        with terminal_progress(console) as progress:
            target, synced = prepare_collection(components, data, collection, progress)
        if synced is not None and synced.chunks:
            synced.render(console)
        if langfuse:
            client = langfuse_client(components)
            name = dataset_name(data, None)
            console.print(push_dataset(client, data, name, include_text=settings.tracing.include_document_text).line())
            outcome, run = retrieval_experiment(
                client, components.retriever(target), data, name, run_name(components, "retrieval", target), mode
            )
            console.print(f"Langfuse experiment {outcome.run_name!r}: {outcome.items} items {outcome.url or ''}")
        else:
            with terminal_progress(console) as progress:
                run = evaluate(components.retriever(target), data, mode, progress)
    path = run.save(settings.eval_runs_dir)
    render_run(run, console)
    console.print(f"run saved to {path}")
    if json_out is not None:
        json_out.write_text(json.dumps(run.to_json(), indent=1) + "\n", encoding="utf-8")
    if baseline is not None:
        worse = regressions(run, load_run(baseline))
        console.print(f"{len(worse)} queries got worse on nDCG@10 than {baseline.name}")
        for w in worse[:20]:
            console.print(
                escape(f"  {w['qid']}: {w['before']:.3f} -> {w['after']:.3f}  {w['question'][:80]}"), highlight=False
            )


@eval_app.command("gate")
def gate(
    answerable: AnswerableOption = None,
    unanswerable: UnanswerableOption = None,
    collection: CollectionOption = None,
    json_out: JsonFileOption = None,
) -> None:
    """Precision and recall of refusals at the configured threshold, and the best threshold on this set."""
    settings = load_settings()
    console = Console()
    with open_components(settings) as components, terminal_progress(console) as progress:
        samples = gate_calibration.collect(
            components.retriever(collection),
            components.recall_gate,
            load_golden(in_checkout(answerable, SAMPLE_GOLDEN, settings)),
            load_golden(in_checkout(unanswerable, SAMPLE_OUT_OF_CORPUS, settings)),
            progress,
        )
    figures = gate_calibration.report(samples, settings.recall_gate, console)
    if json_out is not None:
        json_out.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")


@eval_app.command("answers")
def answers(
    answerable: AnswerableOption = None,
    unanswerable: UnanswerableOption = None,
    skip_unanswerable: Annotated[bool, typer.Option(help="Ask only the answerable questions.")] = False,
    collection: CollectionOption = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Ask only the first N questions of each set.")] = None,
    json_out: JsonFileOption = None,
    langfuse: LangfuseOption = False,
) -> None:
    """Answer every question with the configured model: answered, refusals, citations, token F1 vs the reference."""
    settings = load_settings()
    console = Console()
    golden = load_golden(in_checkout(answerable, SAMPLE_GOLDEN, settings))
    refusable = None if skip_unanswerable else load_golden(in_checkout(unanswerable, SAMPLE_OUT_OF_CORPUS, settings))
    with open_components(settings) as components:
        answerer = components.answerer(collection, log_questions=False)
        if langfuse:
            run = answers_on_langfuse(components, answerer, golden, refusable, limit, collection, console)
        else:
            with terminal_progress(console) as progress:
                run = evaluate_answers(answerer, golden, refusable, limit, progress)
    path = run.save(settings.eval_runs_dir)
    title = f"answers on {golden.name}: {len(run.samples)} questions, {run.model} + {run.adapter}"
    render_aggregate(title, run.aggregate, console, digits=3)
    console.print(f"run saved to {path}")
    if json_out is not None:
        json_out.write_text(json.dumps(run.to_json(), indent=1) + "\n", encoding="utf-8")


def answers_on_langfuse(
    components: Components,
    answerer: Any,
    golden: EvalSet,
    refusable: EvalSet | None,
    limit: int | None,
    collection: str | None,
    console: Console,
) -> AnswerRun:
    client = langfuse_client(components)
    include_text = components.settings.tracing.include_document_text
    full = [(golden, False)] + ([(refusable, True)] if refusable is not None else [])
    for evalset, should_refuse in full:  # the whole set: a pushed subset would archive the rest
        report = push_dataset(client, evalset, evalset.name, should_refuse=should_refuse, include_text=include_text)
        console.print(report.line())
    sets = [(_first(evalset, limit), evalset.name, should_refuse) for evalset, should_refuse in full]
    outcomes, samples = answers_experiment(
        client, answerer, sets, run_name(components, "answers", collection), include_text
    )
    for outcome in outcomes:
        console.print(f"Langfuse experiment {outcome.run_name!r} on {outcome.dataset}: {outcome.items} items")
    return AnswerRun(
        golden.name,
        answerer.generator.model_id,
        answerer.adapter_id,
        aggregate(samples),
        samples,
        collection=answerer.retriever.collection,
    )


def _first(evalset: EvalSet, limit: int | None) -> EvalSet:
    return EvalSet(evalset.name, evalset.kind, evalset.split, evalset.queries[:limit], evalset.corpus)


@eval_app.command("leaks")
def leaks(
    golden: AnswerableOption = None,
    collection: CollectionOption = None,
) -> None:
    """Every dev user asks every golden question and every document title: any chunk outside their groups is a
    leak (exit 1). Saves the run in ASSISTANT_DATA_DIR/eval-runs (the app's quality page shows the latest)."""
    settings = load_settings()
    if settings.identity.users_file is None:
        raise ConfigError("identity.users_file is not set: the probe asks as each dev user")
    users = load_dev_users(settings.identity.users_file)
    questions = [q.text for q in load_golden(in_checkout(golden, SAMPLE_GOLDEN, settings)).queries]
    with open_components(settings) as components, terminal_progress(Console()) as progress:
        run = probe_leaks(components.retriever(collection), users, questions, progress)
    path = run.save(settings.eval_runs_dir)
    typer.echo(f"{run.probes} probes by {run.users} users on {run.collection}: {len(run.leaks)} leaks ({path})")
    for leak in run.leaks[:20]:
        typer.echo(f"LEAK: {leak.user} got {leak.doc_id} {leak.doc_groups} for {leak.question!r}")
    if run.leaks:
        raise typer.Exit(1)


def render_run(run: EvalRun, console: Console) -> None:
    title = f"{run.dataset} ({run.split or 'golden'}), {run.mode}, {len(run.queries)} queries"
    render_aggregate(title, run.aggregate, console, digits=4)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
