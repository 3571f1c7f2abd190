"""Tuning end to end on CPU with a tiny `from_config` Gemma: check -> build-data -> train -> registry -> promote ->
the runtime answers with the adapter; access control of the data and of serving; resume after a kill."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from assistant.access import Principal
from assistant.adapters import (
    SHIPPED,
    AdapterRecord,
    adapters_dir,
    promoted_id,
    read_record,
    resolve_adapter,
    write_record,
)
from assistant.answering import ADAPTER_NOT_SERVED, REFUSAL
from assistant.errors import ConfigError
from assistant.prompt import template_hash
from assistant.recipe import ItemSource, Recipe, load_recipe
from assistant.settings import Settings
from ingestion.run import run_ingest
from tests.conftest import REPO, ingest, run, runtime
from tuning import registry
from tuning.build_data import (
    BuildReport,
    BuildSummary,
    Example,
    ExampleMeta,
    build,
    cap_refusals,
    oracle_position,
    write_examples,
)
from tuning.check import check_file
from tuning.provenance import IndexGroups, SourcePolicy
from tuning.scrub import Scrub
from tuning.train import last_complete_checkpoint, train

HANDBOOK_ITEMS = REPO / "tuning" / "data" / "handbook-items.jsonl"
NO_INDEX = SourcePolicy(IndexGroups(lambda collection: {}), frozenset({"everyone"}))
CURATED = {"sources": [], "curated": True}  # text of no document: needs no index
CURATED_LINE = b'{"prompt": "Question: Q?\\nAnswer:", "completion": " A.", "sources": [], "curated": true}\n'
SALARY_TEXT = "| E2 | Engineer II | $118,000 | $139,000 | $160,000 |"
HR_COMPENSATION = ("everyone", "executives", "hr-compensation")  # allowed to train on hr/salary-bands.md


def scrubbed(recipe: Recipe, work: Path) -> Scrub:
    """The recipe's scrub policy applied to the training files in `work`, as `tune build-data` leaves them."""
    scrub = Scrub.of(recipe, REPO, "the test's recipe")
    for name in ("train.jsonl", "validation.jsonl"):
        if (work / name).is_file():
            scrub.apply(work / name)
    return scrub


def tiny_recipe(tiny_model: Path, **train: object) -> Recipe:
    recipe = Recipe(name="tiny", base_model=str(tiny_model))
    recipe.lora.target_modules = ["q_proj", "v_proj"]
    recipe.train.batch_size, recipe.train.gradient_accumulation = 2, 1
    recipe.train.save_steps = recipe.train.eval_steps = 2
    recipe.train.max_length = 512
    for key, value in train.items():
        setattr(recipe.train, key, value)
    return recipe


def write_lines(path: Path, lines: Sequence[object]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return path


def policy(settings: Settings, *allowed: str) -> SourcePolicy:
    return SourcePolicy(IndexGroups.of(settings), frozenset(allowed or ["everyone"]))


def handbook_source(doc_id: str, *groups: str) -> dict[str, object]:
    return {"collection": "handbook", "doc_id": doc_id, "groups": list(groups)}


def example(question: str, answer: str, *sources: dict[str, object], text: str = "Text.") -> dict[str, object]:
    return {
        "prompt": f"Context:\n[1] Doc\n{text}\n\nQuestion: {question}\nAnswer:",
        "completion": f" {answer}",
        "sources": list(sources),
    }


def test_check_reports_each_problem_with_its_line(tmp_path: Path, tiny_model: Path) -> None:
    good = {
        "prompt": "Context:\n[1] A\nB.\n\nQuestion: What colour is the lobby?\nAnswer:",
        "completion": " Blue [1].",
        **CURATED,
    }
    data = write_lines(
        tmp_path / "train.jsonl",
        [
            good,  # 1
            "{not json",  # 2
            {"messages": [{"role": "robot", "content": "hi"}], **CURATED},  # 3
            {"messages": [{"role": "user", "content": "Where is the lobby?"}], **CURATED},  # 4
            {"prompt": "Question: Who waters the plants?\nAnswer:", "completion": "  ", **CURATED},  # 5
            {"prompt": "Question: Why?\nAnswer:" + " long" * 600, "completion": " Because.", **CURATED},  # 6
            good,  # 7
            {
                **good,
                "prompt": str(good["prompt"]).replace("What colour is the lobby?", "what colour is the LOBBY"),
            },  # 8
            {
                "prompt": "Question: How many floating holidays do I get each year?\nAnswer:",
                "completion": " Two.",
                **CURATED,
            },  # 9
            {"fields": 1, **CURATED},  # 10
        ],
    )
    report = check_file(data, str(tiny_model), 512, 0.0, REPO, NO_INDEX)
    found = {(p.line, p.code) for p in report.problems}
    assert found == {
        (2, "invalid-json"),
        (3, "unknown-role"),
        (4, "missing-answer"),
        (5, "empty-answer"),
        (6, "too-long"),
        (7, "duplicate"),
        (8, "near-duplicate"),
        (9, "eval-overlap"),
        (10, "unknown-shape"),
    }
    assert report.examples == 10 and report.too_long == 1
    assert "handbook-golden.jsonl:1" in next(p.message for p in report.problems if p.code == "eval-overlap")


def test_a_near_duplicate_in_the_other_split_is_an_overlap(tmp_path: Path, tiny_model: Path) -> None:
    wall = "What colour is the big lobby wall on the third floor of building"
    questions = [f"Question: {wall} {n}?\nAnswer:" for n in ("one", "two")]
    data = write_lines(tmp_path / "d.jsonl", [{"prompt": q, "completion": " Blue.", **CURATED} for q in questions])
    for share in (0.0, 1.0):  # both in one split: a near duplicate, not an overlap
        found = check_file(data, str(tiny_model), 512, share, REPO, NO_INDEX).problems
        assert {p.code for p in found} == {"near-duplicate"}
    # With a share that separates them, the pair straddles the splits.
    mixed = [check_file(data, str(tiny_model), 512, s / 20, REPO, NO_INDEX) for s in range(1, 20)]
    assert any({p.code for p in r.problems} == {"split-overlap"} for r in mixed)


def test_curated_items_and_built_data_pass_the_check(settings: Settings, tiny_model: Path, tmp_path: Path) -> None:
    """The shipped items build into data that `tune check` accepts, with no text of a restricted document."""
    extra = write_lines(
        tmp_path / "restricted-items.jsonl",
        [
            {
                "id": "x-1",
                "doc_id": "hr/salary-bands.md",
                "question": "What is the midpoint for an Engineer II?",
                "answer": "$139,000.",
                "quotes": ["| E2 | Engineer II | $118,000 | $139,000 | $160,000 |"],
                "kind": "answerable",
            }
        ],
    )
    recipe = tiny_recipe(tiny_model)
    recipe.data.sources = [
        ItemSource(str(HANDBOOK_ITEMS), "samples/handbook", "handbook"),
        ItemSource(str(extra), "samples/handbook", "handbook"),
    ]
    with runtime(settings) as components:
        report = build(components, recipe, REPO)
        restricted = [c.text for c in components.store.iter_chunks("handbook") if "everyone" not in c.groups]
    assert report.excluded["its document is readable beyond the allowed groups"] == 1
    assert report.data_groups == {"everyone"}
    assert len(report.examples) >= 300 and restricted
    for example in report.examples:
        assert not any(text[:80] in example.prompt for text in restricted), example.meta
    targets = {e.meta.target for e in report.examples}
    assert targets == {"answer", "refusal"}
    assert all(s.groups == ("everyone",) for e in report.examples for s in e.sources)
    answers = [e for e in report.examples if e.meta.target == "answer"]
    assert all(("handbook", e.meta.doc_id) in {(s.collection, s.doc_id) for s in e.sources} for e in answers)
    path = tmp_path / "built.jsonl"
    write_examples(report.examples, path)
    checked = check_file(path, str(tiny_model), 2048, 0.08, REPO, policy(settings))
    assert [p for p in checked.problems if p.code != "too-long"] == []
    # The same lines checked for a recipe allowing no group: every one is refused for its sources.
    closed = check_file(path, str(tiny_model), 2048, 0.08, REPO, policy(settings, "nobody"))
    refused = {p.line for p in closed.problems if p.code == "source-restricted"}
    assert len(refused) == len([e for e in report.examples if e.sources])


def test_train_register_promote_and_answer_with_the_adapter(
    settings: Settings, tiny_model: Path, tmp_path: Path
) -> None:
    recipe = tiny_recipe(tiny_model, max_steps=2)
    recipe.data.sources = [ItemSource(str(HANDBOOK_ITEMS), "samples/handbook", "handbook")]
    work = tmp_path / "work"
    with runtime(settings) as components:
        report = build(components, recipe, REPO)
    write_examples(report.examples[:12], work / "train.jsonl")
    write_examples(report.examples[12:14], work / "validation.jsonl")
    result = train(recipe, work, work, settings.models_dir, policy=policy(settings), scrub=scrubbed(recipe, work))
    assert result.steps == 2 and result.eval_loss is not None
    record = registry.register(
        settings, result.adapter_dir, recipe, base_dir=tiny_model, data=result.data, training={}, repo=REPO
    )
    assert record.prompt_template_hash == template_hash() and record.data_groups == ("everyone",)
    assert (record.path / "adapter_config.json").is_file()
    assert json.loads((record.path / "adapter.json").read_text())["recipe"]["train"]["max_steps"] == 2

    with runtime(settings) as components:
        with pytest.raises(ConfigError, match="has no evaluation"):
            registry.promote(settings, record.id, components.store)
        weak = registry.set_metrics(record, {"handbook": {**registry.GATES, "token_f1": 0.2}})
        with pytest.raises(ConfigError, match=r"token_f1 0\.200 is below the gate"):
            registry.promote(settings, weak.id, components.store)
        registry.set_metrics(record, {"handbook": dict(registry.GATES)})
        registry.promote(settings, record.id, components.store)

    served = settings.model_copy(
        update={"generator": settings.generator.model_copy(update={"model": str(tiny_model), "max_new_tokens": 4})}
    )
    with runtime(served) as components:  # the handbook was ingested by build()
        assert components.adapter is not None and components.adapter.id == record.id
        answer = components.answerer().ask(Principal.of("dana", ["everyone"]), "How do I reset my password?")
    assert answer.adapter == record.id and not answer.refused and answer.model == str(tiny_model)


def without_sources(line: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in line.items() if key != "sources"}


def test_check_refuses_lines_whose_sources_are_outside_the_allowed_groups(
    handbook_index: Settings, tiny_model: Path, tmp_path: Path
) -> None:
    """Each line's documents are looked up in the index now: their groups, not the line's claim, decide."""
    salary = handbook_source("hr/salary-bands.md", "everyone")  # claims everyone; the index says otherwise
    data = write_lines(
        tmp_path / "train.jsonl",
        [
            example("Which floor hosts the robot petting zoo?", "Two [1].", handbook_source("company/holidays.md")),
            example("What does an Engineer II earn at midpoint?", "$139,000 [1].", salary, text=SALARY_TEXT),
            without_sources(example("Which colour is the mascot scarf?", "Teal [1].", text=SALARY_TEXT)),
            example("How tall is the lobby cactus?", "Tall [1].", text=SALARY_TEXT),  # [] but not curated
            example("Who feeds the office fish?", "Lee [1].", handbook_source("hr/old-bands.md", "everyone")),
            {**example("When does the rooftop garden open?", "At noon [1]."), "sources": "handbook"},
            {**example("Which parking spot is reserved for bikes?", "Spot nine."), **CURATED},
        ],
    )
    report = check_file(data, str(tiny_model), 512, 0.0, REPO, policy(handbook_index))
    assert {(p.line, p.code) for p in report.problems} == {
        (2, "source-restricted"),
        (3, "no-sources"),
        (4, "no-sources"),
        (5, "source-not-indexed"),
        (6, "bad-sources"),
    }
    restricted = next(p.message for p in report.problems if p.line == 2)
    assert "handbook:hr/salary-bands.md is readable by groups everyone, executives, hr-compensation" in restricted
    wider = check_file(data, str(tiny_model), 512, 0.0, REPO, policy(handbook_index, *HR_COMPENSATION))
    assert {p.line for p in wider.problems} == {3, 4, 5, 6}


def test_train_refuses_lines_of_unknown_or_restricted_origin(
    handbook_index: Settings, tiny_model: Path, tmp_path: Path
) -> None:
    """Issue 20: train.jsonl replaced or appended to after build-data (whose report says everyone) is refused,
    naming the line, before any model loads."""
    work = tmp_path / "work"
    public = example("How many paid holidays?", "Eleven [1].", handbook_source("company/holidays.md", "everyone"))
    salary = example("Engineer II midpoint?", "$139,000 [1].", text=SALARY_TEXT)
    work.mkdir()
    write_lines(work / "validation.jsonl", [public])
    cases = {
        r"train\.jsonl:1: no 'sources'": [without_sources(salary)],  # replaced
        r"train\.jsonl:2: no 'sources'": [public, without_sources(salary)],  # appended
        r"train\.jsonl:2: source handbook:hr/salary-bands\.md is readable by groups everyone, executives, "
        r"hr-compensation, not all in the recipe's data\.allowed_groups \(everyone\)": [
            public,
            {**salary, "sources": [handbook_source("hr/salary-bands.md", "everyone")]},
        ],
        r"train\.jsonl:1: source handbook:hr/gone\.md is not in the index": [
            {**salary, "sources": [handbook_source("hr/gone.md", "everyone")]}
        ],
        r"train\.jsonl:1: 'sources' is empty": [salary],
    }
    recipe = tiny_recipe(tiny_model, max_steps=1)
    scrub = Scrub.of(recipe, REPO, "recipe.yaml")  # never reached: the lines' origin refuses them first
    for message, lines in cases.items():
        write_lines(work / "train.jsonl", lines)
        with pytest.raises(ConfigError, match=message):
            train(recipe, work, work, work / "models", policy=policy(handbook_index), scrub=scrub)
    (work / "train.jsonl").write_bytes(b'{"prompt": "Caf\xe9?", "completion": " Yes."}\n')
    with pytest.raises(ConfigError, match=r"train\.jsonl:1: the line is not UTF-8 text"):
        train(recipe, work, work, work / "models", policy=policy(handbook_index), scrub=scrub)


def test_an_adapter_record_describes_the_bytes_it_trained_on_and_serving_checks_them(
    settings: Settings, handbook_index: Settings, tiny_model: Path, tmp_path: Path
) -> None:
    """The record's data groups and hash come from the files training read (not from build-report.json); a copy of
    those files stays with the adapter, and a record that does not match it is not served."""
    work = tmp_path / "work"
    public = example("How many paid holidays?", "Eleven [1].", handbook_source("company/holidays.md", "everyone"))
    salary = example("Engineer II midpoint?", "$139,000 [1].", handbook_source("hr/salary-bands.md"), text=SALARY_TEXT)
    work.mkdir()
    write_lines(work / "validation.jsonl", [public])
    write_lines(work / "train.jsonl", [public, salary])
    (work / "build-report.json").write_text('{"data_groups": ["everyone"], "dataset_hash": {"train": "e05d0eee"}}')
    trained = (work / "train.jsonl").read_bytes()
    recipe = tiny_recipe(tiny_model, max_steps=1)
    result = train(
        recipe,
        work,
        work,
        work / "models",
        policy=policy(handbook_index, *HR_COMPENSATION),
        scrub=scrubbed(recipe, work),
    )
    record = registry.register(
        settings, result.adapter_dir, recipe, base_dir=tiny_model, data=result.data, training={}, repo=REPO
    )
    assert record.data_groups == HR_COMPENSATION and record.version == 2
    assert not record.servable_to(Principal.of("dana", ["everyone"]))
    assert record.servable_to(Principal.of("amara", HR_COMPENSATION))
    assert record.dataset_hash == hashlib.sha256(trained).hexdigest()[:16]
    assert (record.path / "data" / "train.jsonl").read_bytes() == trained

    generator = settings.generator.model_copy(update={"model": str(tiny_model), "adapter": record.path})
    pinned = settings.model_copy(update={"generator": generator})
    served = resolve_adapter(pinned)
    assert served is not None and served.id == record.id
    with (record.path / "data" / "train.jsonl").open("ab") as out:
        out.write(json.dumps(public).encode() + b"\n")
    with pytest.raises(ConfigError, match=r"train\.jsonl has sha256 \w+, not the record's \w+: the record does not"):
        resolve_adapter(pinned)
    (record.path / "data" / "train.jsonl").unlink()
    with pytest.raises(ConfigError, match=r"its training data .*train\.jsonl is missing"):
        resolve_adapter(pinned)


def test_tune_train_refuses_a_replaced_train_file_whatever_the_build_report_says(
    handbook_index: Settings, tiny_model: Path, tmp_path: Path
) -> None:
    """The issue's scenario through the command: one line on stderr naming the file and line, exit 1, no adapter."""
    data_dir = tmp_path / "data"
    work = data_dir / "tuning" / "tiny"
    work.mkdir(parents=True)
    state = handbook_index.state_path
    for copied in (state, state.with_name(state.name + "-wal")):
        if copied.is_file():
            shutil.copy(copied, data_dir / copied.name)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"name: tiny\nbase_model: {tiny_model}\n", encoding="utf-8")
    (work / "build-report.json").write_text('{"data_groups": ["everyone"], "dataset_hash": {"train": "e05d0eee"}}')
    claimed = handbook_source("hr/salary-bands.md", "everyone")
    salary = example("Engineer II midpoint?", "$139,000 [1].", claimed, text=SALARY_TEXT)
    write_lines(work / "train.jsonl", [salary])
    write_lines(work / "validation.jsonl", [{**salary, **CURATED}])
    result = run("tune", "train", "--recipe", str(recipe), "--max-steps", "1", data_dir=data_dir)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert f"{work / 'train.jsonl'}:1: source handbook:hr/salary-bands.md is readable by groups" in line
    assert not (data_dir / "adapters").exists()


def test_tune_check_says_what_is_wrong_in_one_line(tmp_path: Path, tiny_model: Path) -> None:
    """A non-object meta, a non-UTF-8 line, a missing file: file, line and what to do; exit 1; no traceback."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"base_model: {tiny_model}\n", encoding="utf-8")
    good = {"prompt": "Question: Where do the llamas sleep?\nAnswer:", "completion": " In the barn.", **CURATED}
    meta = write_lines(tmp_path / "meta.jsonl", [{**good, "meta": ["not", "an", "object"]}])
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes(
        json.dumps(good).encode() + b"\n" + json.dumps(good).replace("barn", "caf\xe9").encode("latin-1")
    )
    expected = {
        meta: f"{meta}:1: bad-meta: 'meta' must be a JSON object",
        latin1: f"{latin1}:2: not-utf8: the line is not UTF-8 text: save the file as UTF-8",
        tmp_path / "gone.jsonl": f"error: {tmp_path / 'gone.jsonl'} does not exist or is not a file; give a training",
    }
    for path, message in expected.items():
        result = run("tune", "check", str(path), "--recipe", str(recipe), data_dir=tmp_path / "data")
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stdout + result.stderr
        assert message in result.stdout + result.stderr


def recorded_adapter(
    settings: Settings,
    name: str,
    groups: tuple[str, ...] = ("everyone",),
    f1: float = 0.5,
    data: bytes = CURATED_LINE,
) -> AdapterRecord:
    """A registered adapter record as `tune train` leaves it (no weights: nothing that uses it loads them),
    trained on `data` (by default one curated line: no index lookup), its metrics meeting the gates at token F1
    `f1`."""
    folder = adapters_dir(settings) / name
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "train.jsonl").write_bytes(data)
    return write_record(
        AdapterRecord(
            name,
            folder,
            settings.generator.model,
            template_hash(),
            groups,
            version=2,
            data_files={"train.jsonl": hashlib.sha256(data).hexdigest()},
            metrics={"handbook": {**registry.GATES, "token_f1": f1}},
        )
    )


def test_promotion_refuses_a_regression_and_rollback_restores(
    settings: Settings, tiny_model: Path, tmp_path: Path
) -> None:
    good, worse, stale = (
        recorded_adapter(settings, name, f1=f1) for name, f1 in (("good", 0.55), ("worse", 0.45), ("stale", 0.6))
    )
    with runtime(settings) as components:  # curated lines only: no source to look up in the (empty) index
        store = components.store
        registry.promote(settings, good.id, store)
        with pytest.raises(ConfigError, match=r"token_f1 0\.450 regresses against good"):
            registry.promote(settings, worse.id, store)
        write_record(dataclasses.replace(stale, prompt_template_hash="0" * 16))
        with pytest.raises(ConfigError, match="prompt template 0000000000000000 differs"):
            registry.promote(settings, stale.id, store)
        (stale.path / "data" / "train.jsonl").write_bytes(b"{}\n{}\n")  # not the data it was trained on
        write_record(stale)
        with pytest.raises(ConfigError, match=r"not promoting stale: adapter stale: .*train\.jsonl has sha256"):
            registry.promote(settings, stale.id, store)
    assert promoted_id(settings) == "good"
    assert registry.rollback(settings) is None and promoted_id(settings) is None


def test_the_runtime_refuses_an_adapter_of_another_template_or_base(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "old-adapter"
    folder.mkdir()
    record = {"id": "old", "base_model": "bundled:gemma-3-270m", "prompt_template_hash": "f" * 16, "data_groups": []}
    (folder / "adapter.json").write_text(json.dumps(record))  # an old record: only the fields serving reads
    pinned = settings.model_copy(update={"generator": settings.generator.model_copy(update={"adapter": folder})})
    with pytest.raises(ConfigError, match="was trained with prompt template ffffffffffffffff"):
        resolve_adapter(pinned)
    (folder / "adapter.json").write_text(
        json.dumps({**record, "prompt_template_hash": template_hash(), "base_model": "other"})
    )
    with pytest.raises(ConfigError, match=r"was trained on other, but generator\.model is bundled:gemma-3-270m"):
        resolve_adapter(pinned)
    # A record naming no training data is the shipped adapter's format: anywhere else it is refused.
    shutil.copy(SHIPPED / "adapter.json", folder / "adapter.json")
    with pytest.raises(ConfigError, match="version-1 record, which does not name the data it was trained on"):
        resolve_adapter(pinned)


def test_an_adapter_is_not_served_to_a_principal_missing_its_data_groups(
    handbook_index: Settings, tiny_model: Path, tmp_path: Path
) -> None:
    from assistant.answering import Answerer
    from assistant.generator import Generator
    from assistant.settings import GeneratorSettings

    record = AdapterRecord("hr-adapter", tmp_path, str(tiny_model), template_hash(), ("everyone", "hr"), 3)
    generator = Generator(GeneratorSettings(model=str(tiny_model), device="cpu", max_new_tokens=4), tmp_path)
    with runtime(handbook_index, generator=generator) as components:
        answerer = Answerer(components.retriever(), components.recall_gate, generator, adapter=record)
        question = "How many weeks of paid parental leave do birth parents get?"
        dana = answerer.ask(Principal.of("dana", ["everyone"]), "How do I reset my password?")
        hannah = answerer.ask(Principal.of("hannah", ["everyone", "hr"]), question)
    assert dana.refused and dana.answer == ADAPTER_NOT_SERVED and dana.model is None
    assert not hannah.refused and hannah.adapter == "hr-adapter" and hannah.answer != REFUSAL


DANA = Principal.of("dana", ["everyone"])
LEE = Principal.of("lee", ["everyone", "leadership"])
HOLIDAYS_QUESTION = "How many public holidays does the office close for each year?"


def small_corpus(root: Path, plans_groups: str) -> Path:
    """Two documents: holidays.md for everyone, plans.md for `plans_groups` (the last matching rule wins)."""
    root.mkdir(exist_ok=True)
    (root / "holidays.md").write_text("# Holidays\n\nThe office closes for eleven public holidays each year.\n")
    (root / "plans.md").write_text("# Plans\n\nThe robot petting zoo opens on floor two next spring.\n")
    rules = f"rules:\n  - match: '*.md'\n    groups: [everyone]\n  - match: plans.md\n    groups: [{plans_groups}]\n"
    (root / "access.yaml").write_text(rules)
    return root


def registered_adapter(settings: Settings, adapter_id: str, data_groups: tuple[str, ...], *built: str) -> Settings:
    """An adapter record as `tune train` leaves it (no weights: nothing here loads them), trained on one line
    showing plans.md (its groups then: `built`) and one curated line; returns settings serving it."""
    plans = example("When does the petting zoo open?", "Next spring [1].", handbook_source("plans.md", *built))
    lines = [plans, {**example("Why?", "Unknown."), **CURATED}]
    raw = "".join(json.dumps(line) + "\n" for line in lines).encode("utf-8")
    folder = recorded_adapter(settings, adapter_id, data_groups, registry.GATES["token_f1"], raw).path
    return settings.model_copy(update={"generator": settings.generator.model_copy(update={"adapter": folder})})


def test_an_adapter_record_hand_edited_wider_than_its_sources_serves_no_one_more(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Trained on plans.md (leadership), its record edited to say everyone: the index's groups decide, at load and
    at promotion (which writes them back into the record)."""
    assert ingest(settings, small_corpus(tmp_path / "corpus", "leadership")).ok
    pinned = registered_adapter(settings, "edited", ("everyone",), "leadership")
    with runtime(pinned) as components:
        served = components.adapter
        assert served is not None and served.data_groups == ("everyone", "leadership")
        assert not served.servable_to(DANA) and served.servable_to(LEE)
        answer = components.answerer(log_questions=False).ask(DANA, HOLIDAYS_QUESTION)
        assert answer.outcome == "refused-adapter" and answer.answer == ADAPTER_NOT_SERVED
        [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "edited" in r.getMessage()]
        assert "record lists data groups [everyone], fewer than" in warning  # logged once, not per question
        promoted = registry.promote(settings, "edited", components.store)
    assert promoted.data_groups == ("everyone", "leadership")
    assert read_record(promoted.path).data_groups == ("everyone", "leadership")


def test_an_adapter_whose_source_is_regrouped_to_fewer_readers_narrows_after_the_sync_and_at_load(
    settings: Settings, tmp_path: Path
) -> None:
    """Trained while plans.md was for everyone; re-ingested with plans.md for leadership only: the running app
    stops serving the adapter to Dana after that sync, and so does the next start."""
    corpus = small_corpus(tmp_path / "corpus", "everyone")
    pinned = registered_adapter(settings, "regrouped", ("everyone",), "everyone")
    with runtime(pinned) as components:
        assert run_ingest(components, corpus).ok
        assert components.adapter is not None and components.adapter.servable_to(DANA)
        small_corpus(corpus, "leadership")
        assert run_ingest(components, corpus).regrouped == ["plans.md"]
        served = components.adapter
        assert not served.servable_to(DANA) and served.servable_to(LEE)
        assert components.answerer(log_questions=False).ask(DANA, HOLIDAYS_QUESTION).outcome == "refused-adapter"
    with runtime(pinned) as components:
        assert components.adapter is not None and not components.adapter.servable_to(DANA)


def test_an_adapter_whose_source_left_the_index_is_refused_with_one_line(settings: Settings, tmp_path: Path) -> None:
    """plans.md deleted after training: the app refuses the adapter (no answer with it, for anyone), promotion
    refuses it, and `assistant ask` says why in one line."""
    corpus = small_corpus(tmp_path / "corpus", "everyone")
    pinned = registered_adapter(settings, "orphan", ("everyone",), "everyone")
    missing = r"adapter orphan is not served: its training source handbook:plans\.md is not in the index"
    with runtime(pinned) as components:
        assert run_ingest(components, corpus).ok
        assert components.adapter is not None
        (corpus / "plans.md").unlink()
        assert run_ingest(components, corpus).deleted == ["plans.md"]
        with pytest.raises(ConfigError, match=missing):
            components.answerer(log_questions=False)
        with pytest.raises(ConfigError, match="not promoting orphan: " + missing):
            registry.promote(settings, "orphan", components.store)
    env = {"ASSISTANT_GENERATOR__ADAPTER": str(pinned.generator.adapter)}
    asked = run("ask", HOLIDAYS_QUESTION, "--user", "dana", data_dir=settings.data_dir, extra_env=env)
    assert asked.returncode == 1 and "Traceback" not in asked.stderr
    [line] = asked.stderr.strip().splitlines()
    assert re.search(missing, line), line


def test_the_default_app_serves_the_shipped_adapter_to_everyone(handbook_index: Settings) -> None:
    """The sample handbook ingested, nothing promoted: the shipped adapter (a version-1 record, no data files to
    look up) is served to everyone, as before sources were checked at load."""
    with runtime(handbook_index) as components:
        served = components.adapter
    assert served is not None and served.path == SHIPPED and served.data_groups == ("everyone",)
    assert served.servable_to(DANA)


def test_training_resumes_from_its_last_checkpoint_after_a_kill(tmp_path: Path, tiny_model: Path) -> None:
    work = tmp_path / "work"
    rows = [
        {"prompt": f"Question: what is {i}?\nAnswer:", "completion": f" It is {i} [1].", **CURATED} for i in range(40)
    ]
    write_lines(work.mkdir(parents=True) or work / "train.jsonl", rows[:36])
    write_lines(work / "validation.jsonl", rows[36:])
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(
        f"name: tiny\nbase_model: {tiny_model}\nlora: {{target_modules: [q_proj, v_proj]}}\n"
        "train: {max_steps: 400, batch_size: 1, gradient_accumulation: 1, save_steps: 2, eval_steps: 1000}\n"
    )
    script = (
        "import sys; from pathlib import Path; from assistant.recipe import load_recipe; "
        "from tuning.train import train; "
        "from tests.test_tuning import NO_INDEX, scrubbed; "
        "r = load_recipe(Path(sys.argv[1]), sys.argv[3:]); w = Path(sys.argv[2]); "
        "print('RESULT', train(r, w, w, w / 'models', policy=NO_INDEX, scrub=scrubbed(r, w)).resumed_from, flush=True)"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    first = subprocess.Popen([sys.executable, "-c", script, str(recipe_file), str(work)], cwd=REPO, env=env)
    deadline = time.monotonic() + 240
    # Any complete checkpoint will do: with save_total_limit=2 a given one may already be rotated away.
    while last_complete_checkpoint(work / "checkpoints") is None and time.monotonic() < deadline:
        time.sleep(0.5)
    first.send_signal(signal.SIGKILL)
    first.wait()
    complete = last_complete_checkpoint(work / "checkpoints")
    assert complete is not None, "no checkpoint before the kill"
    last = int(complete.split("-")[-1])
    assert last < 400
    again = subprocess.run(
        [sys.executable, "-c", script, str(recipe_file), str(work), f"train.max_steps={last + 2}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"RESULT {work / 'checkpoints' / f'checkpoint-{last}'}" in again.stdout
    state = json.loads(
        (work / "adapter" / ".." / "checkpoints" / f"checkpoint-{last + 2}" / "trainer_state.json").read_text()
    )
    assert state["global_step"] == last + 2
    with (work / "train.jsonl").open("a", encoding="utf-8") as out:  # other data under the same checkpoints
        out.write(json.dumps({**rows[0], "completion": " Something else."}) + "\n")
    recipe = load_recipe(recipe_file, [f"train.max_steps={last + 4}"])
    with pytest.raises(ConfigError, match=r"checkpoint-\d+ was trained on other data than the files now"):
        train(recipe, work, work, work / "models", policy=NO_INDEX, scrub=scrubbed(recipe, work))


def test_recipes_are_checked_and_overridable(tmp_path: Path) -> None:
    recipe = load_recipe(REPO / "tuning" / "recipes" / "handbook-cpu.yaml", ["train.learning_rate=1e-4", "lora.r=8"])
    assert recipe.train.learning_rate == 1e-4 and recipe.lora.r == 8 and recipe.data.allowed_groups == ["everyone"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {learning_rat: 0.1}\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_recipe(bad)
    with pytest.raises(ConfigError, match="train: batch_size: expected int"):
        load_recipe(REPO / "tuning" / "recipes" / "handbook-cpu.yaml", ["train.batch_size=four"])


def test_the_shipped_adapter_is_served_by_default_and_matches_the_prompt_template(settings: Settings) -> None:
    """Changing assistant/prompt.py without retraining the shipped adapter fails here, not in front of users."""
    if not (SHIPPED / "adapter.json").is_file():
        pytest.skip("no adapter shipped in assistant/shipped_adapter/")
    record = resolve_adapter(settings)
    assert record is not None and record.path == SHIPPED
    assert record.data_groups == ("everyone",) and (SHIPPED / "adapter_model.safetensors").is_file()
    # Its record (version 1) names no data files: it is trusted as package content, built for everyone only.
    assert record.version == 1 and record.recipe["data"]["allowed_groups"] == ["everyone"]
    off = settings.model_copy(
        update={"generator": settings.generator.model_copy(update={"use_promoted_adapter": False})}
    )
    assert resolve_adapter(off) is None


def test_another_base_model_runs_without_the_shipped_adapter(settings: Settings, tiny_model: Path) -> None:
    other = settings.model_copy(update={"generator": settings.generator.model_copy(update={"model": str(tiny_model)})})
    assert resolve_adapter(other) is None


def test_tune_eval_names_the_base_model_the_shipped_adapter_or_a_registered_one(settings: Settings) -> None:
    from assistant.adapters import adapters_dir
    from tuning.evaluate import adapter_folder

    assert adapter_folder(settings, "base") is None
    assert adapter_folder(settings, "shipped") == SHIPPED and (SHIPPED / "adapter.json").is_file()
    assert adapter_folder(settings, "handbook-cpu-1") == adapters_dir(settings) / "handbook-cpu-1"


def test_refusal_examples_are_capped_at_the_recipe_share() -> None:
    def example(n: int, target: str) -> Example:
        meta = ExampleMeta(f"x-{n}", "handbook", f"question {n}", None, 1 if target == "answer" else None, 2)
        return Example(f"x-{n}", f"prompt {n}", "completion", meta, ())

    report = BuildReport(examples=[example(n, "answer" if n < 80 else "refusal") for n in range(120)])
    cap_refusals(report, 0.2, random.Random(13))
    refusals = [e for e in report.examples if e.meta.target == "refusal"]
    assert len(refusals) == 20 and report.dropped_refusals == 20 and len(report.examples) == 100
    again = BuildReport(examples=[example(n, "answer" if n < 80 else "refusal") for n in range(120)])
    cap_refusals(again, 0.2, random.Random(13))
    assert [e.id for e in again.examples] == [e.id for e in report.examples]  # seeded: the same sample
    kept = BuildReport(examples=list(report.examples))
    cap_refusals(kept, 1.0, random.Random(13))
    assert kept.examples == report.examples and kept.dropped_refusals == 0
    with pytest.raises(ConfigError, match="max_refusal_share"):
        cap_refusals(kept, 1.5, random.Random(13))


def test_the_oracle_goes_where_the_recipe_says() -> None:
    from types import SimpleNamespace

    from tuning.build_data import _ranked_above
    from tuning.items import Item

    item = Item("hb-x", "Where do I park?", "North.", ("Parking is north.",), "a.md", "answerable", "handbook")
    retrieved = [SimpleNamespace(doc_id=d) for d in ("x.md", "b.md", "a.md", "c.md")]
    kept = [retrieved[1], retrieved[3]]  # x.md was left out (a group outside the allowed ones)
    assert _ranked_above(item, retrieved, kept) == 1  # only b.md, of the kept ones, ranked above a.md
    assert _ranked_above(item, [retrieved[0]], []) is None  # not retrieved
    assert oracle_position("retrieved", 1, 2, random.Random(1)) == 1  # ranked second: block 2
    assert oracle_position("retrieved", 0, 0, random.Random(1)) == 0  # one block: the oracle alone
    assert {oracle_position("retrieved", None, 2, random.Random(s)) for s in range(30)} == {0, 1, 2}
    assert {oracle_position("retrieved", 3, 2, random.Random(s)) for s in range(30)} == {0, 1, 2}  # not shown
    assert {oracle_position("random", 1, 2, random.Random(s)) for s in range(30)} == {0, 1, 2}
    with pytest.raises(ConfigError, match="oracle_position"):
        oracle_position("middle", 1, 2, random.Random(1))


def test_file_formats_round_trip_through_their_one_reader_and_writer(tmp_path: Path) -> None:
    """adapter.json, promoted.json and build-report.json each have one dataclass that writes and reads them: every
    field of the shipped record survives, and a file from a newer version is refused by name."""
    folder = tmp_path / "copy"
    folder.mkdir()
    shipped = json.loads((SHIPPED / "adapter.json").read_text(encoding="utf-8"))
    written = write_record(dataclasses.replace(read_record(SHIPPED), path=folder))
    assert {k: v for k, v in written.to_json().items() if k in shipped} == shipped  # (v1 lacks version-2 fields)
    newer = {**shipped, "record_version": 99}
    (folder / "adapter.json").write_text(json.dumps(newer), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"adapter\.json: not an adapter record \(record version 99 is newer"):
        read_record(folder)
    report = BuildReport(excluded_distractors=2, data_groups={"everyone"})
    summary = BuildSummary.of(report, [], [], {"train": "ab", "validation": "cd"})
    assert BuildSummary.read(summary.write(tmp_path).parent) == summary
