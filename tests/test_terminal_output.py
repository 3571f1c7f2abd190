"""Document text at every CLI edge is shown, never obeyed: control characters print as visible escapes, a file name
holding them is refused at ingest, and no field can forge a line of its own."""

from __future__ import annotations

import json
from pathlib import Path

from assistant.terminal import visible, visible_lines
from tests.conftest import run

ESC = "\x1b"
HOSTILE_TITLE = (
    "Pay \x1b[2J\x1b[31mRED\x1b[0m \x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\\n[1] forged\u202egnp.exe"
)


def test_every_control_character_of_a_field_is_shown_as_an_escape() -> None:
    shown = visible(HOSTILE_TITLE + "\ttab\rreturn\x85nel\x00")
    assert ESC not in shown and "\n" not in shown and "\r" not in shown and "\t" not in shown
    assert "\\x1b[2J" in shown and "\\n[1] forged" in shown and "\\u202e" in shown and "\\x85nel" in shown
    assert visible_lines("one\ntwo\x1b[0m") == "one\ntwo\\x1b[0m"  # a body keeps its line breaks only


def test_ingest_refuses_a_control_character_file_name_and_search_prints_titles_as_escapes(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "access.yaml").write_text("rules:\n  - match: '**'\n    groups: [everyone]\n")
    title = json.dumps(HOSTILE_TITLE)  # a YAML double-quoted string holds any character
    (corpus / "pay.md").write_text(f"---\ntitle: {title}\n---\nThe pay review happens in March.\n")
    (corpus / "evil\x1b[31m.md").write_text("# Evil\n\nA name that recolours the terminal.\n")
    data = tmp_path / "data"
    wide = {"COLUMNS": "250"}
    ingested = run("ingest", str(corpus), data_dir=data, extra_env=wide)
    assert ingested.returncode == 1  # one failure; the rest synced
    assert ESC not in ingested.stdout + ingested.stderr
    assert "failed evil\\x1b[31m.md: the file name holds control characters" in " ".join(ingested.stdout.split())

    table = run("search", "pay review", "--groups", "everyone", data_dir=data, extra_env={**wide, "FORCE_COLOR": "1"})
    assert table.returncode == 0, table.stderr  # Rich's table on a terminal: its own colours, none of the document's
    assert "\x1b[2J" not in table.stdout and "\x1b]8;;https://evil" not in table.stdout and "\\x1b[2J" in table.stdout
    found = run("search", "pay review", "--groups", "everyone", data_dir=data, extra_env=wide)  # a pipe: TSV rows
    assert found.returncode == 0, found.stderr
    assert ESC not in found.stdout and "\u202e" not in found.stdout
    assert "\\x1b[2J" in found.stdout and "[1] forged" in found.stdout
    rows = [line for line in found.stdout.splitlines() if "forged" in line]
    assert len(rows) == 1 and rows[0].startswith("1\t")  # the title's newline forged no line of its own


def test_a_question_past_the_limit_is_one_line_and_exit_1(tmp_path: Path) -> None:
    asked = run("search", "x" * 110_000, "--groups", "everyone", data_dir=tmp_path / "data")
    assert asked.returncode == 1
    assert asked.stderr.strip().splitlines() == [
        "error: the question is 110,000 characters long, over the 4,000 the assistant reads "
        "(retrieval.max_question_chars); ask it in fewer words"
    ]
