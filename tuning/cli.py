"""`assistant tune check | build-data | train | eval | list | rollout | promote | rollback`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from assistant.adapters import adapters_dir, promoted_id, read_record
from assistant.cli_progress import terminal_progress
from assistant.components import open_components
from assistant.errors import ConfigError
from assistant.generator import resolve_base_model
from assistant.identity import cli_operator
from assistant.recipe import Recipe, load_recipe
from assistant.rollout import Stage, read_rollout
from assistant.settings import CHECKOUT, Settings, load_settings
from evals.rollout import RATES, served_figures, shadow_figures
from tuning import registry, rollout
from tuning.build_data import BuildSummary, build, read_built_lines, read_lines, render_lines
from tuning.check import add_scan_problems, check_file, read_data_file, split_of
from tuning.evaluate import BASE, SHIPPED_ID, evaluate_adapter
from tuning.provenance import IndexGroups, SourcePolicy
from tuning.restricted_text import IndexedText, RestrictedText
from tuning.rollout import last_move, stage_of
from tuning.scrub import ACTIONS, ScanReport, Scrub, report_path
from tuning.superseded import superseded
from tuning.train import train as run_training

RecipeOption = Annotated[Path, typer.Option("--recipe", help="A recipe YAML (tuning/recipes/).")]
SHIPPED_RECIPE = CHECKOUT / "tuning" / "recipes" / "handbook-cpu.yaml"
SetOption = Annotated[list[str] | None, typer.Option("--set", help="Override a recipe field: section.field=value.")]

tune_app = typer.Typer(help="Train, evaluate and promote the answer adapter.", no_args_is_help=True)


def work_dir(settings: Settings, recipe: Recipe) -> Path:
    """Where a recipe's built data, checkpoints and last adapter live."""
    return settings.data_dir / "tuning" / recipe.name


def source_policy(settings: Settings, recipe: Recipe) -> SourcePolicy:
    """Examples may show text of documents whose groups in this data directory's index are all allowed, and no
    line may copy 8 words in a row of text those groups may not read in the recipe's collections (read once
    here, so the index is not held open while training runs)."""
    allowed = frozenset(recipe.data.allowed_groups)
    collections = tuple(dict.fromkeys(source.collection for source in recipe.data.sources))
    with open_components(settings) as components:
        store = components.store
        chunks = {
            name: [IndexedText(c.doc_id, c.text, c.groups) for c in store.iter_chunks(name)]
            for name in collections
            if store.has_collection(name)
        }
    text = RestrictedText(chunks, allowed)
    return SourcePolicy(IndexGroups.of(settings), allowed, text, collections)


@tune_app.command("build-data")
def build_data(
    recipe_path: RecipeOption,
    overrides: SetOption = None,
    changed_only: Annotated[
        bool,
        typer.Option(
            "--changed-only",
            help="Build again only the examples whose documents changed or were deleted since; keep the rest.",
        ),
    ] = False,
) -> None:
    """RAFT-style examples from the recipe's items: retrieved as a principal of the allowed groups, rendered through
    assistant/prompt.py, split by content hash into train.jsonl and validation.jsonl, scrubbed of personal data and
    secrets by the recipe's policy (a scan report beside each file)."""
    settings = load_settings()
    recipe = load_recipe(recipe_path, overrides or [])
    console = Console()
    folder = work_dir(settings, recipe)
    scrub = Scrub.of(recipe, settings.repo_dir, str(recipe_path))  # a bad policy fails before the build
    previous = read_built_lines(folder) if changed_only else None
    with open_components(settings) as components, terminal_progress(console) as progress:
        report = build(components, recipe, settings.repo_dir, progress, previous)
    share = recipe.data.validation_share
    built: dict[str, list[dict[str, Any]]] = {"train": [], "validation": []}
    kept = {id(line) for line in report.kept_lines}
    for name, lines in (previous or {}).items():  # a kept line stays in its file (its question may be redacted)
        built[name] += [line for line in lines if id(line) in kept]
    for example in report.examples:
        built[split_of(example.meta.question, share)].append(example.to_json())
    if previous is not None:
        console.print(
            f"built again the examples of {report.rebuilt_items} item(s) whose documents changed since "
            f"({len(report.examples)} example(s)); kept {len(report.kept_lines)} line(s) as they were"
        )
    # Scrubbed in memory, both files, before either is written: the files on disk hold what the policy lets
    # through, and a scanner failure leaves the previous pair (and its reports) as it was.
    scans = scrub.apply_all({folder / f"{name}.jsonl": render_lines(rows) for name, rows in built.items()})
    hashes = {path.stem: scan.sha256_after[:16] for path, scan in scans.items()}
    written = {name: read_lines(folder / f"{name}.jsonl") for name in built}
    summary = BuildSummary.of(report, written["train"], written["validation"], hashes)
    summary.write(folder)
    console.print(
        f"{summary.train} train and {summary.validation} validation examples in {folder} "
        f"({summary.refusal_targets} refusal targets; by source {summary.by_source})"
    )
    if report.dropped_refusals:
        console.print(
            f"left out {report.dropped_refusals} refusal example(s) to keep refusals at most "
            f"{recipe.data.max_refusal_share:.0%} of the examples (data.max_refusal_share)"
        )
    for reason, count in report.excluded.items():
        console.print(f"[yellow]excluded {count} item(s): {reason}[/yellow]")
    if report.excluded_distractors:
        console.print(
            f"[yellow]{report.excluded_distractors} retrieved chunk(s) of documents outside "
            f"{recipe.data.allowed_groups} were kept out of the examples[/yellow]"
        )
    console.print(f"training text comes from documents of groups {summary.data_groups}")
    print_scans(console, list(scans.values()))


def print_scans(console: Console, scans: list[ScanReport]) -> None:
    """What the scan found, by entity type and action, for each file; then which scanners ran. Counts only."""
    table = Table(title="personal data and secrets found (values are never shown)")
    for column in ("file", "entity type", *ACTIONS):
        table.add_column(column)
    for scan in scans:
        for kind, by_action in sorted(scan.counts.items()):
            table.add_row(scan.file, kind, *(str(by_action.get(action, 0) or "") for action in ACTIONS))
    if table.row_count:
        console.print(table)
    for scan in scans:
        console.print(scan.summary())
    if scans:
        ran = scans[0].scanners
        ner = ran["ner_model"] or "no NER model installed: person names are not scanned"
        console.print(
            f"scanners: presidio-analyzer {ran['presidio-analyzer']} ({', '.join(ran['recognizers'])}); "
            f"detect-secrets {ran['detect-secrets']} ({len(ran['plugins'])} secret types); {ner}",
            markup=False,
        )


@tune_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="Training JSONL: chat `messages`, or `prompt` / `completion`.")],
    recipe_path: Annotated[
        Path | None,
        typer.Option(
            "--recipe",
            help="Its max_length, data.allowed_groups and scrub policy apply [default: the shipped handbook recipe].",
        ),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the report as JSON here.")] = None,
    scrub_file: Annotated[
        bool,
        typer.Option("--scrub", help="Apply the scrub policy to FILE in place and write its scan report beside it."),
    ] = False,
) -> None:
    """Validate training data: every problem with its line number; exit 1 when there is any. Each line's sources
    are looked up in this data directory's index: their groups must be in the recipe's data.allowed_groups. Each
    line's text is scanned for personal data and secrets (`tuning/scrub.py`); the table counts what was found,
    never the values."""
    recipe_path = recipe_path or SHIPPED_RECIPE  # its scrub policy (allow-list included) is the one to check
    recipe = load_recipe(recipe_path)
    raw = read_data_file(file)  # a missing file says so before a tokenizer loads
    settings = load_settings()
    scrub = Scrub.of(recipe, settings.repo_dir, str(recipe_path))
    scan = scrub.apply(file, raw) if scrub_file else scrub.scan(file, raw)
    tokenizer_dir = resolve_base_model(recipe.base_model, settings.models_dir)
    share = recipe.data.validation_share
    report = check_file(
        file, tokenizer_dir, recipe.train.max_length, share, settings.repo_dir, source_policy(settings, recipe)
    )
    # What the policy would still act on and whether a current report vouches for the file (after --scrub: the
    # file as rewritten, whose report also tells whether the examples left out held secrets the policy fails on).
    add_scan_problems(report, scrub.scan(file, file.read_bytes()) if scrub_file else scan, scrub, file)
    console = Console(highlight=False)
    for problem in report.problems:
        where = f"{file}:{problem.line}" if problem.line else str(file)
        console.print(f"{where}: {problem.code}: {problem.message}", soft_wrap=True, markup=False)
    print_scans(console, [scan])
    if scrub_file:
        console.print(f"{file} scrubbed in place; its scan report is {report_path(file)}")
    console.print(report.summary())
    if json_out is not None:
        body = {**report.to_json(), "scan": scan.to_json()}
        json_out.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    if report.problems:
        raise typer.Exit(code=1)


@tune_app.command("train")
def train(
    recipe_path: RecipeOption,
    overrides: SetOption = None,
    max_steps: Annotated[
        int | None, typer.Option(help="Stop after N optimiser steps [recipe: train.max_steps].")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda ...")] = "auto",
) -> None:
    """Train the recipe's adapter on its built data (resuming from the last checkpoint), then register it."""
    settings = load_settings()
    recipe = load_recipe(recipe_path, [*(overrides or []), *([f"train.max_steps={max_steps}"] if max_steps else [])])
    folder = work_dir(settings, recipe)
    if not (folder / "train.jsonl").is_file():
        raise ConfigError(f"no built data in {folder}: run `assistant tune build-data --recipe {recipe_path}` first")
    console = Console()
    policy = source_policy(settings, recipe)
    scrub = Scrub.of(recipe, settings.repo_dir, str(recipe_path))
    with terminal_progress(console) as progress:
        result = run_training(
            recipe,
            folder,
            folder,
            settings.models_dir,
            policy=policy,
            scrub=scrub,
            device_setting=device,
            progress=progress,
        )
    training = {
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "train_loss": result.train_loss,
        "eval_loss": result.eval_loss,
        "examples": result.examples,
        "skipped_too_long": result.skipped_too_long,
        "resumed_from": result.resumed_from,
        "device": result.device,
    }
    record = registry.register(
        settings,
        result.adapter_dir,
        recipe,
        base_dir=Path(resolve_base_model(recipe.base_model, settings.models_dir)),
        data=result.data,
        training=training,
        repo=settings.repo_dir,
        scan=result.scans,
    )
    console.print(
        f"adapter {record.id}: {result.steps} steps in {result.seconds / 60:.1f} min on {result.device}, "
        f"train loss {result.train_loss}, validation loss {result.eval_loss}; "
        f"{result.skipped_too_long} example(s) over max_length skipped"
    )
    groups = ", ".join(record.data_groups) or "none (no document's text)"
    console.print(f"data groups {groups}, from the examples trained on: served only to users in every one of them")
    console.print(f"next: assistant tune eval {record.id}, then assistant tune promote {record.id}")


@tune_app.command("evidence")
def evidence(
    recipe_path: RecipeOption,
    overrides: SetOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Scorer folder (default: ASSISTANT_DATA_DIR/evidence/<id>).")
    ] = None,
    reuse_data: Annotated[bool, typer.Option("--reuse-data", help="Train on the pairs already built.")] = False,
) -> None:
    """Build (question, sentence) pairs from the curated items and SciFact's train rationales, and train the
    evidence scorer (assistant/evidence.py); set evidence.scorer to the folder to serve it."""
    from tuning.evidence_train import main as train_evidence

    argv = ["--recipe", str(recipe_path), *(arg for o in overrides or [] for arg in ("--set", o))]
    train_evidence([*argv, *(["--out", str(out)] if out else []), *(["--reuse-data"] if reuse_data else [])])


@tune_app.command("similarity-evidence")
def similarity_evidence(
    recipe_path: Annotated[Path, typer.Option("--recipe", help="The evidence recipe whose pairs to fit on.")] = Path(
        "tuning/recipes/evidence-cpu.yaml"
    ),
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for similarity-evidence.json (default: ASSISTANT_DATA_DIR/evidence/similarity). Serve it "
            "with ASSISTANT_EVIDENCE__SCORER=FOLDER; the one in assistant/shipped_similarity/ serves everyone.",
        ),
    ] = None,
) -> None:
    """Fit the zero-shot evidence scorer (calibrated MiniLM cosine, assistant/similarity_evidence.py) on the
    evidence pairs (built first when missing), and print its validation figures."""
    from tuning.evidence_train import load_evidence_recipe
    from tuning.similarity_evidence import fit

    settings = load_settings()
    recipe = load_evidence_recipe(recipe_path if recipe_path.is_absolute() else settings.repo_dir / recipe_path)
    out = out or settings.data_dir / "evidence" / "similarity"
    with open_components(settings) as components:
        record = fit(components, recipe, out)
    console = Console()
    console.print(f"similarity evidence in {out}: calibration {record.calibration}")
    console.print(json.dumps(record.metrics, indent=1), markup=False)


@tune_app.command("eval")
def evaluate(
    adapter_id: Annotated[
        str, typer.Argument(help="An adapter id from `tune list`, 'shipped' for the packaged one, or 'base'.")
    ],
    limit: Annotated[
        int | None, typer.Option(min=1, help="Ask only the first N handbook questions of each set.")
    ] = None,
    scifact: Annotated[int, typer.Option(min=0, help="SciFact test claims to judge (0: none).")] = 100,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON here.")] = None,
) -> None:
    """Answer quality on the held-out sets: handbook golden + out-of-corpus questions, and SciFact test claims.
    An adapter's figures are saved in its record (promotion reads them)."""
    settings = load_settings()
    console = Console()
    figures = evaluate_adapter(settings, adapter_id, limit, scifact, console)
    if adapter_id not in (BASE, SHIPPED_ID):  # the shipped record is part of the package: figures go to --json
        registry.set_metrics(read_record(adapters_dir(settings) / adapter_id), figures)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")


@tune_app.command("list")
def list_adapters() -> None:
    """The registered adapters, their metrics, which one is promoted, and those trained on documents changed or
    deleted since (with how many examples and which documents)."""
    settings = load_settings()
    current = promoted_id(settings)
    records = registry.list_adapters(settings)
    stale = {entry.adapter: entry for entry in superseded(settings, records)}
    table = Table(title=f"adapters in {adapters_dir(settings)}")
    for column in ("", "id", "data groups", "format", "cited", "F1", "refusals", "sources"):
        table.add_column(column)
    for record in records:
        m = record.metrics.get("handbook", {})
        cells = [f"{m[k]:.2f}" if k in m else "-" for k in ("format_valid", "cited", "token_f1", "correct_refusals")]
        entry = stale.get(record.id)
        sources = "-" if not record.sources else "as trained"
        if entry is not None:
            sources = f"superseded {entry.since[:10] or '(date unknown)'}"
        table.add_row("*" if record.id == current else "", record.id, ", ".join(record.data_groups), *cells, sources)
    console = Console()
    console.print(table)
    for entry in stale.values():
        console.print(f"[yellow]{escape(entry.line())}[/yellow]", soft_wrap=True)


@tune_app.command("promote")
def promote(
    adapter_id: Annotated[str, typer.Argument(help="An adapter id from `tune list`.")],
    why: Annotated[str, typer.Option("--why", help="Why: kept in the adapter's record.")] = "promoted",
    evidence: Annotated[
        bool,
        typer.Option(
            "--evidence",
            help="Also require its rollout evidence: enough shadow or canary questions and no regression beyond "
            "rollout.margins [default: rollout.require_evidence].",
        ),
    ] = False,
) -> None:
    """Serve this adapter to everyone, if it meets the gates and does not regress against the one served now."""
    settings = load_settings()
    with open_components(settings) as components:  # its training sources are looked up in the index
        promotion = rollout.promote(settings, adapter_id, cli_operator(), why, components, evidence=evidence)
    record = promotion.record
    groups = ", ".join(record.data_groups) or "no group"
    typer.echo(f"promoted {record.id}: the runtime serves it from now on, to principals holding all of: {groups}")
    if promotion.evidence is not None:
        typer.echo(f"on {promotion.evidence['candidate']['questions']} {promotion.evidence['source']} questions")
    hand_to_engine(settings)


@tune_app.command("rollback")
def rollback(
    why: Annotated[str, typer.Option("--why", help="Why: kept in the adapter's record.")] = "rolled back",
) -> None:
    """At once: end the rollout in progress (shadow or canary), else serve the previously promoted adapter."""
    settings = load_settings()
    typer.echo(rollout.rollback(settings, cli_operator(), why))
    hand_to_engine(settings)


def hand_to_engine(settings: Settings) -> None:
    """With the engine backend: the running engine loads the adapter now served (no restart). An engine that is
    down is no error here: `assistant serve-model` serves the promoted adapter when it starts."""
    if settings.generator.backend != "engine":
        return
    from assistant.adapters import resolve_adapter
    from assistant.engine import EngineError, EngineGenerator

    record = resolve_adapter(settings)
    if record is None:
        return
    try:
        EngineGenerator(settings.generator, settings.engine, record).load()  # loads the adapter if not served
    except EngineError as exc:
        typer.echo(f"the engine did not take it now ({exc}); it serves {record.id} from its next start")
        return
    typer.echo(f"the engine at {settings.engine.url} serves {record.id}")


rollout_app = typer.Typer(help="Shadow and canary stages of a candidate adapter.", no_args_is_help=True)

AdapterArgument = Annotated[str, typer.Argument(help="An adapter id from `tune list`.")]
ShareOption = Annotated[float, typer.Option("--share", help="Share of questions (shadow) or of users (canary).")]
WhyOption = Annotated[str, typer.Option("--why", help="Why: kept in the adapter's record with the move.")]


@rollout_app.command("status")
def status() -> None:
    """Where each adapter stands, and the figures of the adapters serving users now (with 95% intervals)."""
    settings = load_settings()
    console = Console()
    table = Table(title=f"adapters in {adapters_dir(settings)}")
    for column in ("id", "stage", "last move"):
        table.add_column(column)
    for record in registry.list_adapters(settings):
        table.add_row(record.id, stage_of(settings, record), escape(last_move(record) or "-"))
    console.print(table)
    staged = read_rollout(adapters_dir(settings))
    figures = served_figures(settings.data_dir, staged.since if staged is not None else None)
    if staged is not None and staged.stage == "shadow":
        shadow = shadow_figures(settings.data_dir, staged.adapter, staged.since)
        figures = [shadow.served, shadow.candidate]
        console.print(f"shadow of {staged.adapter} since {staged.since}: the same questions, answered twice")
        console.print(shadow.skipped_line())
    if figures:
        compared = Table(title="served adapters" if staged is None or staged.stage != "shadow" else "shadow")
        compared.add_column("adapter")
        compared.add_column("questions")
        for name in RATES:
            compared.add_column(name.replace("_", " "))
        compared.add_column("latency p50")
        for f in figures:
            latency = f"{f.latency_p50:.1f} s" if f.latency_p50 is not None else "-"
            compared.add_row(f.adapter, str(f.questions), *(f.rates[n].shown() for n in RATES), latency)
        console.print(compared)


def _start(stage: Stage, adapter_id: str, share: float, why: str) -> None:
    settings = load_settings()
    with open_components(settings) as components:  # its training sources are looked up in the index
        record = rollout.start(settings, adapter_id, stage, share, cli_operator(), why, components.store)
    who = "of questions, answered again and never shown" if stage == "shadow" else "of users, served it"
    typer.echo(f"{record.id} is in {stage}: {share:.0%} {who} (those holding all of: {', '.join(record.data_groups)})")


@rollout_app.command("shadow")
def shadow(adapter_id: AdapterArgument, why: WhyOption, share: ShareOption = 0.2) -> None:
    """Answer a share of real questions again with the candidate, after the served answer; never shown."""
    _start("shadow", adapter_id, share, why)


@rollout_app.command("canary")
def canary(adapter_id: AdapterArgument, why: WhyOption, share: ShareOption = 0.1) -> None:
    """Serve the candidate to a share of users (sticky per user); needs the offline gates of `tune promote`."""
    _start("canary", adapter_id, share, why)


def register(app: typer.Typer) -> None:
    tune_app.add_typer(rollout_app, name="rollout")
    app.add_typer(tune_app, name="tune")
