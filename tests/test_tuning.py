"""Tuning end to end on CPU with a tiny `from_config` Gemma: check -> build-data -> train -> registry -> promote ->
the runtime answers with the adapter; access control of the data and of serving; resume after a kill."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.access import Principal
from assistant.adapters import AdapterRecord, read_record, resolve_adapter
from assistant.answering import ADAPTER_NOT_SERVED, REFUSAL
from assistant.errors import ConfigError
from assistant.prompt import template_hash
from assistant.settings import Settings
from tests.conftest import REPO, runtime
from tuning import registry
from tuning.build_data import BuildReport, Example, build, cap_refusals, oracle_position, write_examples
from tuning.check import check_file
from tuning.recipe import ItemSource, Recipe, load_recipe
from tuning.train import last_complete_checkpoint, train

HANDBOOK_ITEMS = REPO / "tuning" / "data" / "handbook-items.jsonl"


def tiny_recipe(tiny_model: Path, **train: object) -> Recipe:
    recipe = Recipe(name="tiny", base_model=str(tiny_model))
    recipe.lora.target_modules = ["q_proj", "v_proj"]
    recipe.train.batch_size, recipe.train.gradient_accumulation = 2, 1
    recipe.train.save_steps = recipe.train.eval_steps = 2
    recipe.train.max_length = 512
    for key, value in train.items():
        setattr(recipe.train, key, value)
    return recipe


def write_lines(path: Path, lines: list[object]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return path


def test_check_reports_each_problem_with_its_line(tmp_path: Path, tiny_model: Path) -> None:
    good = {"prompt": "Context:\n[1] A\nB.\n\nQuestion: What colour is the lobby?\nAnswer:", "completion": " Blue [1]."}
    data = write_lines(
        tmp_path / "train.jsonl",
        [
            good,  # 1
            "{not json",  # 2
            {"messages": [{"role": "robot", "content": "hi"}]},  # 3
            {"messages": [{"role": "user", "content": "Where is the lobby?"}]},  # 4
            {"prompt": "Question: Who waters the plants?\nAnswer:", "completion": "  "},  # 5
            {"prompt": "Question: Why?\nAnswer:" + " long" * 600, "completion": " Because."},  # 6
            good,  # 7
            {**good, "prompt": good["prompt"].replace("What colour is the lobby?", "what colour is the LOBBY")},  # 8
            {"prompt": "Question: How many floating holidays do I get each year?\nAnswer:", "completion": " Two."},  # 9
            {"fields": 1},  # 10
        ],
    )
    report = check_file(data, str(tiny_model), 512, 0.0, REPO)
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
    data = write_lines(tmp_path / "d.jsonl", [{"prompt": q, "completion": " Blue."} for q in questions])
    for share in (0.0, 1.0):  # both in one split: a near duplicate, not an overlap
        assert {p.code for p in check_file(data, str(tiny_model), 512, share, REPO).problems} == {"near-duplicate"}
    # With a share that separates them, the pair straddles the splits.
    mixed = [check_file(data, str(tiny_model), 512, s / 20, REPO) for s in range(1, 20)]
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
    targets = {e.meta["target"] for e in report.examples}
    assert targets == {"answer", "refusal"}
    path = tmp_path / "built.jsonl"
    write_examples(report.examples, path)
    checked = check_file(path, str(tiny_model), 2048, 0.08, REPO)
    assert [p for p in checked.problems if p.code != "too-long"] == []


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
    result = train(recipe, work, work, settings.models_dir)
    assert result.steps == 2 and result.eval_loss is not None
    record = registry.register(
        settings,
        result.adapter_dir,
        recipe,
        base_dir=tiny_model,
        dataset_hash="test",
        data_groups=sorted(report.data_groups),
        training={"steps": result.steps},
        repo=REPO,
    )
    assert record.prompt_template_hash == template_hash() and record.data_groups == ("everyone",)
    assert (record.path / "adapter_config.json").is_file()
    assert json.loads((record.path / "adapter.json").read_text())["recipe"]["train"]["max_steps"] == 2

    with pytest.raises(ConfigError, match="has no evaluation"):
        registry.promote(settings, record.id)
    weak = registry.set_metrics(record, {"handbook": {**registry.GATES, "token_f1": 0.2}})
    with pytest.raises(ConfigError, match=r"token_f1 0\.200 is below the gate"):
        registry.promote(settings, weak.id)
    registry.set_metrics(record, {"handbook": dict(registry.GATES)})
    registry.promote(settings, record.id)

    served = settings.model_copy(
        update={"generator": settings.generator.model_copy(update={"model": str(tiny_model), "max_new_tokens": 4})}
    )
    with runtime(served) as components:  # the handbook was ingested by build()
        assert components.adapter is not None and components.adapter.id == record.id
        answer = components.answerer().ask(Principal.of("dana", ["everyone"]), "How do I reset my password?")
    assert answer.adapter == record.id and not answer.refused and answer.model == str(tiny_model)


def test_promotion_refuses_a_regression_and_rollback_restores(
    settings: Settings, tiny_model: Path, tmp_path: Path
) -> None:
    def fake(name: str, f1: float) -> AdapterRecord:
        folder = registry.adapters_dir(settings) / name
        folder.mkdir(parents=True)
        registry.write_record(
            folder,
            {
                "id": name,
                "base_model": "bundled:gemma-3-270m",
                "prompt_template_hash": template_hash(),
                "data_groups": ["everyone"],
                "metrics": {"handbook": {**registry.GATES, "token_f1": f1}},
            },
        )
        return read_record(folder)

    good, worse, stale = fake("good", 0.55), fake("worse", 0.45), fake("stale", 0.6)
    registry.promote(settings, good.id)
    with pytest.raises(ConfigError, match=r"token_f1 0\.450 regresses against good"):
        registry.promote(settings, worse.id)
    raw = dict(stale.raw, prompt_template_hash="0" * 16)
    registry.write_record(stale.path, raw)
    with pytest.raises(ConfigError, match="prompt template 0000000000000000 differs"):
        registry.promote(settings, stale.id)
    assert registry.promoted_id(settings) == "good"
    assert registry.rollback(settings) is None and registry.promoted_id(settings) is None


def test_the_runtime_refuses_an_adapter_of_another_template_or_base(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "old-adapter"
    folder.mkdir()
    record = {"id": "old", "base_model": "bundled:gemma-3-270m", "prompt_template_hash": "f" * 16, "data_groups": []}
    registry.write_record(folder, record)
    pinned = settings.model_copy(update={"generator": settings.generator.model_copy(update={"adapter": folder})})
    with pytest.raises(ConfigError, match="was trained with prompt template ffffffffffffffff"):
        resolve_adapter(pinned)
    registry.write_record(folder, {**record, "prompt_template_hash": template_hash(), "base_model": "other"})
    with pytest.raises(ConfigError, match=r"was trained on other, but generator\.model is bundled:gemma-3-270m"):
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


def test_training_resumes_from_its_last_checkpoint_after_a_kill(tmp_path: Path, tiny_model: Path) -> None:
    work = tmp_path / "work"
    rows = [{"prompt": f"Question: what is {i}?\nAnswer:", "completion": f" It is {i} [1]."} for i in range(40)]
    write_lines(work.mkdir(parents=True) or work / "train.jsonl", rows[:36])
    write_lines(work / "validation.jsonl", rows[36:])
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(
        f"name: tiny\nbase_model: {tiny_model}\nlora: {{target_modules: [q_proj, v_proj]}}\n"
        "train: {max_steps: 400, batch_size: 1, gradient_accumulation: 1, save_steps: 2, eval_steps: 1000}\n"
    )
    script = (
        "import sys; from pathlib import Path; from tuning.recipe import load_recipe; from tuning.train import train; "
        "r = load_recipe(Path(sys.argv[1]), sys.argv[3:]); w = Path(sys.argv[2]); "
        "print('RESULT', train(r, w, w, w / 'models').resumed_from, flush=True)"
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
    from assistant.adapters import SHIPPED

    if not (SHIPPED / "adapter.json").is_file():
        pytest.skip("no adapter shipped in assistant/shipped_adapter/")
    record = resolve_adapter(settings)
    assert record is not None and record.path == SHIPPED
    assert record.data_groups == ("everyone",) and (SHIPPED / "adapter_model.safetensors").is_file()
    off = settings.model_copy(
        update={"generator": settings.generator.model_copy(update={"use_promoted_adapter": False})}
    )
    assert resolve_adapter(off) is None


def test_another_base_model_runs_without_the_shipped_adapter(settings: Settings, tiny_model: Path) -> None:
    other = settings.model_copy(update={"generator": settings.generator.model_copy(update={"model": str(tiny_model)})})
    assert resolve_adapter(other) is None


def test_tune_eval_names_the_base_model_the_shipped_adapter_or_a_registered_one(settings: Settings) -> None:
    from assistant.adapters import SHIPPED, adapters_dir
    from tuning.evaluate import adapter_folder

    assert adapter_folder(settings, "base") is None
    assert adapter_folder(settings, "shipped") == SHIPPED and (SHIPPED / "adapter.json").is_file()
    assert adapter_folder(settings, "handbook-cpu-1") == adapters_dir(settings) / "handbook-cpu-1"


def test_refusal_examples_are_capped_at_the_recipe_share() -> None:
    def example(n: int, target: str) -> Example:
        return Example(f"x-{n}", f"prompt {n}", "completion", {"target": target})

    report = BuildReport(examples=[example(n, "answer" if n < 80 else "refusal") for n in range(120)])
    cap_refusals(report, 0.2, random.Random(13))
    refusals = [e for e in report.examples if e.meta["target"] == "refusal"]
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
