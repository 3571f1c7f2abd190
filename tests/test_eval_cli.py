"""`assistant eval retrieval` and `assistant search` run as a person runs them (real subprocesses)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from assistant.settings import Settings
from tests.conftest import REPO, run

TINY_CORPUS = [
    {"_id": "d1", "title": "Aspirin", "text": "Aspirin lowers the risk of heart attack in adults over fifty."},
    {"_id": "d2", "title": "Vitamin D", "text": "Vitamin D supplements do not prevent bone fractures in the elderly."},
    {"_id": "d3", "title": "Statins", "text": "Statins reduce LDL cholesterol and cardiovascular events."},
    {"_id": "d4", "title": "Sleep", "text": "Short sleep is associated with higher blood pressure in teenagers."},
]
TINY_QUERIES = [
    {"_id": "q1", "text": "Does aspirin prevent heart attacks?"},
    {"_id": "q2", "text": "vitamin D and fractures"},
    {"_id": "q3", "text": "statins lower cholesterol"},
]


def tiny_beir(root: Path) -> Path:
    data = root / "tiny"
    (data / "qrels").mkdir(parents=True)
    (data / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in TINY_CORPUS))
    (data / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in TINY_QUERIES))
    (data / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td3\t1\n")
    return data


def test_eval_retrieval_on_a_beir_directory_then_baseline(tmp_path: Path) -> None:
    data = tiny_beir(tmp_path)
    first = run(
        "eval", "retrieval", "--dataset", str(data), "--json", str(tmp_path / "a.json"), data_dir=tmp_path / "d"
    )
    assert first.returncode == 0, first.stderr
    result = json.loads((tmp_path / "a.json").read_text())
    for key in ("ndcg@10", "recall@10", "recall@100", "mrr@10", "queries"):
        assert key in result
    assert len(result["queries"]) == 3 and result["recall@10"] == 1.0
    assert result["ndcg@10"] > 0.9
    saved = list((tmp_path / "d" / "eval-runs").glob("*-tiny-test-hybrid.json"))
    assert len(saved) == 1

    # a worse baseline-relative run: pretend the baseline was perfect on every metric and query
    baseline = json.loads(saved[0].read_text())
    for query in baseline["queries"]:
        query["metrics"]["ndcg@10"] = 1.0
    (tmp_path / "perfect.json").write_text(json.dumps(baseline))
    bm25 = run(
        "eval",
        "retrieval",
        "--dataset",
        str(data),
        "--mode",
        "bm25",
        "--baseline",
        str(tmp_path / "perfect.json"),
        data_dir=tmp_path / "d",
    )
    assert bm25.returncode == 0, bm25.stderr
    assert "queries got worse on nDCG@10" in bm25.stdout


def test_eval_retrieval_on_a_golden_file(handbook_index: Settings, tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    shutil.copytree(handbook_index.data_dir, data_dir)
    out = tmp_path / "golden.json"
    result = run(
        "eval",
        "retrieval",
        "--dataset",
        str(REPO / "samples" / "handbook-golden.jsonl"),
        "--json",
        str(out),
        data_dir=data_dir,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["recall@10"] > 0.9


def test_search_json_as_a_dev_user(handbook_index: Settings, tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    shutil.copytree(handbook_index.data_dir, data_dir)
    users = str(REPO / "samples" / "users.yaml")
    found = run(
        "search",
        "parental leave weeks",
        "--user",
        "hannah",
        "--json",
        data_dir=data_dir,
        extra_env={"ASSISTANT_IDENTITY__USERS_FILE": users},
    )
    assert found.returncode == 0, found.stderr
    payload = json.loads(found.stdout)
    assert payload["answerable"] is True
    assert payload["results"][0]["doc_id"] == "hr/parental-leave.md"
    assert set(payload["results"][0]) == {"doc_id", "chunk_id", "score", "groups", "title"}

    hidden = run("search", "parental leave weeks", "--groups", "everyone", "--json", data_dir=data_dir)
    assert "hr/parental-leave.md" not in {r["doc_id"] for r in json.loads(hidden.stdout)["results"]}

    nobody = run("search", "parental leave", data_dir=data_dir)
    assert nobody.returncode == 1 and "say who is asking" in nobody.stderr


def test_search_piped_prints_whole_ids_and_titles(handbook_index: Settings, tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    shutil.copytree(handbook_index.data_dir, data_dir)
    found = run(
        "search", "office opening hours", "--groups", "everyone", "--top-k", "3", data_dir=data_dir,
        extra_env={"COLUMNS": "40"},  # a narrow "terminal" that is in fact a pipe: nothing may be cut to fit it
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    assert "…" not in found.stdout and "..." not in found.stdout
    rows = [line.split("\t") for line in found.stdout.splitlines() if "\t" in line]
    assert rows[0] == ["#", "score", "doc id", "title", "section", "groups"] and len(rows) > 2
    ids = [row[2] for row in rows[1:]]
    assert "company/office-locations-and-hours.html" in ids
    as_json = run("search", "office opening hours", "--groups", "everyone", "--top-k", "3", "--json", data_dir=data_dir)
    assert ids == [r["doc_id"] for r in json.loads(as_json.stdout)["results"]]
