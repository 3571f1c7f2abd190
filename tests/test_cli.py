"""The `assistant` command as a person runs it: a real subprocess, exit codes, one-line errors, --json."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from assistant.settings import Settings
from assistant.store import VectorSpace
from assistant.store.edge import EdgeStore
from tests.conftest import run


def test_ingest_json_summary_and_exit_code(handbook: Path, tmp_path: Path) -> None:
    (handbook / "company" / "broken.pdf").write_bytes(b"%PDF-1.4 nothing")
    out = tmp_path / "summary.json"
    result = run("ingest", str(handbook), "--json", str(out), data_dir=tmp_path / "data")
    assert result.returncode == 1, result.stderr  # a document failed: non-zero, the rest is ingested
    summary = json.loads(out.read_text())
    for key in ("added", "changed", "deleted", "regrouped", "unchanged", "uncovered", "failed", "chunks", "seconds"):
        assert key in summary
    assert summary["added"] == 31
    assert summary["uncovered"] == ["drafts/unreviewed-reorg-memo.md"]
    assert summary["failed"][0]["path"] == "company/broken.pdf"
    assert "could not be read as PDF" in result.stdout

    (handbook / "company" / "broken.pdf").unlink()
    dry = run("ingest", str(handbook), "--dry-run", data_dir=tmp_path / "data")
    assert dry.returncode == 0 and "Dry run" in dry.stdout


def test_index_in_use_is_one_line_not_a_traceback(handbook: Path, tmp_path: Path) -> None:
    holder = EdgeStore(tmp_path / "data" / "index")
    holder.ensure_collection("handbook", VectorSpace("test", 384))
    try:
        result = run("ingest", str(handbook), data_dir=tmp_path / "data")
    finally:
        holder.close()
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is in use by pid" in lines[0] and "Traceback" not in result.stderr


def test_invalid_policy_is_reported_and_missing_source_is_one_line(handbook: Path, tmp_path: Path) -> None:
    (handbook / "access.yaml").write_text("rules:\n  - match: 'a/**'\n    groups: [x\n")
    out = tmp_path / "summary.json"
    bad = run("ingest", str(handbook), "--json", str(out), data_dir=tmp_path / "data")
    assert bad.returncode == 1
    failed = json.loads(out.read_text())["failed"]
    assert failed[0]["path"] == "access.yaml" and failed[0]["error"].startswith("line 3: invalid YAML")  # [ opened
    assert "access.yaml: line 3: invalid YAML" in bad.stdout and "chunks embedded" not in bad.stdout
    missing = run("ingest", str(tmp_path / "nope"), data_dir=tmp_path / "data")
    assert missing.returncode == 1 and "is not a folder" in missing.stderr


def test_usage_error_exits_2(tmp_path: Path) -> None:
    assert run("ingest", data_dir=tmp_path).returncode == 2
    assert run("no-such-command", data_dir=tmp_path).returncode == 2


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = run("--help", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: python -m assistant.cli [OPTIONS] COMMAND [ARGS]...")
    listed = re.findall(r"^  ([a-z-]+)  ", result.stdout.split("Commands:")[1], flags=re.MULTILINE)
    assert listed == ["ask", "feedback", "ingest", "search", "serve-model", "ui", "eval", "review", "tune"]
    assert "Company assistant: ingest documents, search and ask with access control" in result.stdout


def test_long_evaluations_show_a_progress_bar_on_a_terminal_and_none_in_a_pipe(
    handbook_index: Settings, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(handbook_index.data_dir, data)  # the runs these save stay out of the shared index's folder
    one = tmp_path / "one.jsonl"
    one.write_text(Path("samples/handbook-golden.jsonl").read_text(encoding="utf-8").splitlines()[0] + "\n")
    terminal = {"TTY_COMPATIBLE": "1", "COLUMNS": "100"}  # rich draws as on a terminal
    retrieval = ("eval", "retrieval", "--dataset", str(one))
    for args, task in (
        (("eval", "leaks", "--golden", str(one)), "probes"),
        (("eval", "gate", "--answerable", str(one)), "questions"),
        (retrieval, "queries"),
    ):
        shown = run(*args, data_dir=data, extra_env=terminal)
        assert shown.returncode == 0, shown.stderr
        drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.stdout)  # the terminal's colour and cursor codes
        assert re.search(rf"{task} ━+ (\d+)/\1 0:00:00", drawn), drawn  # what runs, how far, the time left
    piped = run(*retrieval, data_dir=data)
    assert piped.returncode == 0 and "ndcg" in piped.stdout.lower()
    assert not re.search(r"queries ━+ \d+/\d+", piped.stdout)  # a log or a pipe gets the results alone
