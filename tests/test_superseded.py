"""Adapters that know their training documents changed (`tuning/superseded.py`), and a build of only the examples
those documents gave (`tune build-data --changed-only`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from assistant.adapters import SHIPPED
from assistant.recipe import ItemSource
from assistant.settings import Settings
from tests.conftest import REPO, run, runtime
from tests.test_tuning import HANDBOOK_ITEMS, policy, tiny_recipe, write_lines
from tuning import registry
from tuning.build_data import build, render_lines
from tuning.registry import ADAPTER_FILES
from tuning.scrub import Scrub
from tuning.superseded import superseded
from tuning.train import read_training_data

EDITED, DELETED = "company/holidays.md", "company/code-of-conduct.md"


def shows(line: dict[str, object], *doc_ids: str) -> bool:
    return any(source["doc_id"] in doc_ids for source in line["sources"])  # type: ignore[attr-defined, index]


def test_an_edited_or_deleted_source_flags_its_adapter_and_only_its_examples_are_built_again(
    settings: Settings, handbook: Path, tiny_model: Path, tmp_path: Path
) -> None:
    items = [json.loads(line) for line in HANDBOOK_ITEMS.read_text().splitlines()]
    chosen = [i for i in items if i.get("doc_id") in (EDITED, DELETED, "company/expense-basics.md")]
    recipe = tiny_recipe(tiny_model)
    recipe.data.sources = [ItemSource(str(write_lines(tmp_path / "items.jsonl", chosen)), str(handbook), "handbook")]
    with runtime(settings) as components:
        built = build(components, recipe, REPO)
    rows = [example.to_json() for example in built.examples]
    assert all(source.get("hash") for row in rows for source in row["sources"])  # each source names its content
    work = tmp_path / "work"
    scrub = Scrub.of(recipe, REPO, "recipe.yaml")
    scrub.apply(work / "train.jsonl", render_lines(rows[:-4]))
    scrub.apply(work / "validation.jsonl", render_lines(rows[-4:]))
    weights = tmp_path / "weights"
    weights.mkdir()
    for name in ADAPTER_FILES:  # the weights do not matter here: what it learned from does
        shutil.copy2(SHIPPED / name, weights / name)
    data = read_training_data(work, policy(settings))
    record = registry.register(settings, weights, recipe, base_dir=tiny_model, data=data, training={}, repo=REPO)
    assert {s["doc_id"] for s in record.sources} >= {EDITED, DELETED} and superseded(settings) == []

    (handbook / EDITED).write_text((handbook / EDITED).read_text() + "\nThe calendar was revised.\n")
    (handbook / DELETED).unlink()
    out = tmp_path / "sync.json"
    synced = run("ingest", str(handbook), "--json", str(out), data_dir=settings.data_dir)
    assert synced.returncode == 0, synced.stderr
    [entry] = json.loads(out.read_text())["superseded_adapters"]
    documents = {d["doc_id"]: d for d in entry["documents"]}
    assert entry["adapter"] == record.id and entry["since"] >= record.created
    assert documents[EDITED]["how"] == "changed" and documents[DELETED]["how"] == "deleted"
    assert documents[EDITED]["examples"] == sum(shows(row, EDITED) for row in rows)
    assert entry["examples"] == sum(d["examples"] for d in documents.values())
    assert f"adapter {record.id} (trained on superseded documents since {entry['since']})" in synced.stdout
    listed = run("tune", "list", data_dir=settings.data_dir)
    assert f"{record.id} (trained on superseded documents since {entry['since']})" in listed.stdout

    with runtime(settings) as components:
        again = build(components, recipe, REPO, previous={"train": rows[:-4], "validation": rows[-4:]})
    stale_items = {row["meta"]["item"] for row in rows if shows(row, EDITED, DELETED)}
    assert again.rebuilt_items == len(stale_items) > 0
    assert again.kept_lines == [row for row in rows if row["meta"]["item"] not in stale_items]
    assert {example.meta.item for example in again.examples} <= stale_items
    assert not any(shows(example.to_json(), DELETED) for example in again.examples)
    edited_hash = {s.hash for e in again.examples for s in e.sources if s.doc_id == EDITED}
    assert edited_hash and edited_hash.isdisjoint(
        {s["hash"] for row in rows for s in row["sources"] if s["doc_id"] == EDITED}
    )
