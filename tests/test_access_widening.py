"""Access can only narrow by surprise, never widen: shadowed rules, patterns whose meaning moved, widenings listed and
(under --strict) refused unless accepted, front matter near misses failing closed, one bad document never taking a
sync down. Each case is synced for real (bundled MiniLM, Qdrant Edge)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from assistant.settings import Settings
from ingestion.run import run_ingest
from ingestion.state import SyncState
from tests.conftest import docs_in_index, ingest, run, runtime

SHADOWED = """rules:
  - match: "company/**"
    groups: [everyone]
  - match: "hr/salary/**"
    groups: [hr-compensation]
  - match: "hr/**"
    groups: [hr]
"""
# Written when a slash-free pattern was read as anchored: meant for the top-level README only.
README_ANCHORED = """rules:
  - match: "**"
    groups: [everyone]
  - match: "hr/**"
    groups: [hr]
  - match: "/README.md"
    groups: [everyone]
"""
README_ANY_DEPTH = README_ANCHORED.replace('"/README.md"', '"README.md"')
README_FILES = {
    "README.md": "# Start here\n\nThe top-level readme.\n",
    "hr/README.md": "# HR\n\nPay review dates.\n",
    "hr/pay.md": "# Pay\n\nBands.\n",
    "company/hello.md": "# Hello\n\nWelcome.\n",
}


def corpus_of(root: Path, policy: str, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "access.yaml").write_text(policy, encoding="utf-8")
    return root


def strict(settings: Settings) -> Settings:
    return settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"strict": True})})


def groups_of(settings: Settings, collection: str = "c") -> dict[str, tuple[str, ...]]:
    return {doc: next(iter(v["groups"])) for doc, v in docs_in_index(settings, collection).items()}  # type: ignore[call-overload]


SALARY_FILES = {
    "company/hello.md": "# Hello\n\nWelcome to the company.\n",
    "hr/salary/bands.md": "# Salary bands\n\nBand 4 pays 90,000 to 110,000.\n",
    "hr/leave.md": "# Leave\n\nEveryone has 25 days of leave.\n",
}


def test_a_shadowed_rule_is_reported_and_strict_mode_refuses_naming_the_later_rule(
    settings: Settings, tmp_path: Path
) -> None:
    corpus = corpus_of(tmp_path / "corpus", SHADOWED, SALARY_FILES)
    summary = ingest(settings, corpus, collection="c")
    assert summary.ok  # the default mode syncs and reports
    assert summary.unmatched_rules == [
        "access.yaml line 4: rule 'hr/salary/**' decides no document: the 1 it matches are all decided by the later "
        "rule(s) 'hr/**' (line 6), which override it; move it below them or narrow them"
    ]
    assert summary.to_json()["unmatched_rules"] == summary.unmatched_rules
    with runtime(strict(settings)) as components:
        refused = run_ingest(components, corpus, "c2", None)
    assert refused.refused and refused.added == []
    assert [f.path for f in refused.failed] == ["access.yaml:4"]
    assert "later rule(s) 'hr/**' (line 6)" in refused.failed[0].error


def test_a_pattern_whose_meaning_moved_is_listed_as_a_widening_with_both_rules(
    settings: Settings, tmp_path: Path
) -> None:
    files = README_FILES
    corpus = corpus_of(tmp_path / "corpus", README_ANCHORED, files)
    assert ingest(settings, corpus, collection="c").ok
    assert groups_of(settings)["hr/README.md"] == ("hr",)

    (corpus / "access.yaml").write_text(README_ANY_DEPTH)  # the upgrade: README.md now matches at any depth
    preview = ingest(settings, corpus, collection="c", dry_run=True)
    expected = (
        "hr/README.md: readers grow from [hr] to [everyone] (decided by line 4 'hr/**' [hr] before, by line 6 "
        "'README.md' [everyone] now)"
    )
    assert preview.widened == [expected]
    assert [w.split(":")[0] for w in preview.rule_warnings] == ["access.yaml line 6"]
    assert "write '/README.md' for the corpus root only" in preview.rule_warnings[0]

    with runtime(strict(settings)) as components:
        refused = run_ingest(components, corpus, "c", None)
    assert refused.refused and refused.widened == [expected]
    assert [f.path for f in refused.failed] == ["hr/README.md"] and "--accept-widening" in refused.failed[0].error
    assert groups_of(settings)["hr/README.md"] == ("hr",)  # nothing written

    with runtime(strict(settings)) as components:
        applied = run_ingest(components, corpus, "c", None, accept_widening=True, started_by="olivia")
    assert applied.ok and applied.widened == [expected] and applied.regrouped == ["hr/README.md"]
    assert groups_of(settings)["hr/README.md"] == ("everyone",)
    state = SyncState(settings.state_path)
    try:
        [record] = state.widenings("c")
        assert state.documents("c")["hr/README.md"].rule == "line 6 'README.md' [everyone]"
    finally:
        state.close()
    assert record["doc_id"] == "hr/README.md" and record["run_by"] == "olivia" and record["accepted"] == 1
    assert json.loads(str(record["groups_after"])) == ["everyone"] and float(str(record["at"])) > 0


def test_a_widening_by_removed_front_matter_fails_that_document_under_strict(
    settings: Settings, tmp_path: Path
) -> None:
    files = {
        "company/pay.md": "---\ngroups: [managers]\n---\n# Pay\n\nRaises are 3 percent.\n",
        "company/hello.md": "# Hello\n\nWelcome.\n",
    }
    corpus = corpus_of(tmp_path / "corpus", "rules:\n  - {match: '**', groups: [everyone, managers]}\n", files)
    assert ingest(settings, corpus, collection="c").ok
    (corpus / "company" / "pay.md").write_text("# Pay\n\nRaises are 4 percent.\n")  # the narrowing is gone
    (corpus / "company" / "hello.md").write_text("# Hello\n\nWelcome aboard.\n")
    with runtime(strict(settings)) as components:
        summary = run_ingest(components, corpus, "c", None)
    assert summary.changed == ["company/hello.md"]
    assert [f.path for f in summary.failed] == ["company/pay.md"]
    assert "readers grow from [managers] to [everyone, managers]" in summary.failed[0].error
    assert groups_of(settings)["company/pay.md"] == ("managers",)  # the indexed version keeps its narrowing
    default = ingest(settings, corpus, collection="c")  # not strict: applied, and listed
    assert default.ok and default.widened == [
        "company/pay.md: readers grow from [managers] to [everyone, managers] (decided by line 2 '**' "
        "[everyone, managers] before, by line 2 '**' [everyone, managers] now)"
    ]


def test_front_matter_that_only_looks_like_narrowing_withdraws_the_document_and_the_rest_syncs(
    settings: Settings, tmp_path: Path
) -> None:
    files = {"hr/pay.md": "# Pay\n\nBands.\n", "hr/leave.md": "# Leave\n\n25 days.\n"}
    corpus = corpus_of(tmp_path / "corpus", "rules:\n  - {match: '**', groups: [everyone, hr]}\n", files)
    assert ingest(settings, corpus, collection="c").ok
    (corpus / "hr" / "pay.md").write_text("---\nGroups: [hr]\n---\n# Pay\n\nBands for 2027.\n")
    (corpus / "hr" / "leave.md").write_text("# Leave\n\n26 days.\n")
    summary = ingest(settings, corpus, collection="c")
    assert [f.path for f in summary.failed] == ["hr/pay.md"] and "'Groups' looks meant" in summary.failed[0].error
    assert summary.changed == ["hr/leave.md"] and summary.deleted == ["hr/pay.md"]
    assert set(docs_in_index(settings, "c")) == {"hr/leave.md"}  # fail closed: not served to the wider groups


def test_any_exception_reading_one_document_is_that_documents_failure(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingestion.sync as sync_module
    from ingestion.readers import parse_document as real

    def fragile(kind: str, name: str, raw: bytes):  # type: ignore[no-untyped-def]
        if name == "bug.md":
            raise RecursionError("maximum recursion depth exceeded")
        if name == "huge.md":
            raise MemoryError()
        return real(kind, name, raw)

    monkeypatch.setattr(sync_module, "parse_document", fragile)
    files = {"bug.md": "# Bug\n\nA.\n", "huge.md": "# Huge\n\nB.\n", "fine.md": "# Fine\n\nC.\n"}
    corpus = corpus_of(tmp_path / "corpus", "rules:\n  - {match: '**', groups: [everyone]}\n", files)
    summary = ingest(settings, corpus, collection="c")
    assert summary.added == ["fine.md"]
    errors = {f.path: f.error for f in summary.failed}
    assert errors["bug.md"].startswith("could not be read (RecursionError: maximum recursion depth exceeded)")
    assert errors["huge.md"].startswith("could not be read (MemoryError)")


def test_the_cli_accepts_a_widening_only_when_told_and_fails_on_warnings_when_asked(tmp_path: Path) -> None:
    files = README_FILES
    corpus = corpus_of(tmp_path / "corpus", README_ANCHORED, files)
    data = tmp_path / "data"
    assert run("ingest", str(corpus), data_dir=data).returncode == 0
    (corpus / "access.yaml").write_text(README_ANY_DEPTH)
    wide = {"COLUMNS": "250"}
    refused = run("ingest", str(corpus), "--strict", data_dir=data, extra_env=wide)
    assert refused.returncode == 1
    assert "would widen hr/README.md: readers grow from [hr] to [everyone]" in refused.stdout
    accepted = run("ingest", str(corpus), "--strict", "--accept-widening", "--fail-on-warnings", data_dir=data)
    assert accepted.returncode == 1  # applied, but a scheduled job hears about the warnings
    assert "widened hr/README.md" in " ".join(accepted.stdout.split())
    again = run("ingest", str(corpus), "--strict", "--fail-on-warnings", data_dir=data)
    assert again.returncode == 1 and "has no '/'" in " ".join(again.stdout.split())  # the depth warning stays


def test_a_symlinked_folder_is_listed_and_a_file_swapped_for_a_link_is_not_followed(tmp_path: Path) -> None:
    from assistant.errors import DocumentError
    from ingestion.access_policy import AccessPolicy
    from ingestion.sources import FolderSource, SourceEntry

    secret = corpus_of(tmp_path / "secret", "rules:\n  - {match: '**', groups: [hr]}\n", {"pay.md": "# Pay\n"})
    corpus = corpus_of(tmp_path / "corpus", "rules:\n  - {match: '**', groups: [everyone]}\n", {"a.md": "# A\n"})
    (corpus / "linked").symlink_to(secret, target_is_directory=True)
    source = FolderSource(corpus, AccessPolicy.load(corpus / "access.yaml"), [".md"], 1_000_000)
    [entry] = [e for e in source.entries() if isinstance(e, SourceEntry)]
    assert source.ignored() == ["linked/ (a symbolic link to a folder: not followed)"]
    (corpus / "a.md").unlink()  # between the listing and the read, the file becomes a link to a restricted one
    (corpus / "a.md").symlink_to(secret / "pay.md")
    with pytest.raises(DocumentError, match="became a symbolic link while the sync ran"):
        source.read(entry)


@pytest.mark.parametrize("bad_id", ["../hr/pay", "/etc/passwd", "a/../../b", "x\x1b[2Jy"])
def test_a_beir_id_that_reads_as_a_path_outside_the_corpus_is_refused(tmp_path: Path, bad_id: str) -> None:
    corpus = tmp_path / "corpus.jsonl"
    lines = [{"_id": bad_id, "title": "T", "text": "Bad id."}, {"_id": "ok", "title": "T", "text": "Fine."}]
    corpus.write_text("".join(json.dumps(line) + "\n" for line in lines))
    from ingestion.access_policy import AccessPolicy
    from ingestion.sources import BeirSource, SourceEntry, SourceFailure

    entries = list(BeirSource(corpus, AccessPolicy.grant_all(["everyone"])).entries())
    assert [e.doc_id for e in entries if isinstance(e, SourceEntry)] == ["ok"]
    [failure] = [e for e in entries if isinstance(e, SourceFailure)]
    assert failure.path == "corpus.jsonl:1" and "holds a '..' segment" in failure.error
    assert "\x1b" not in failure.error


def test_an_index_from_before_rules_were_recorded_learns_them_on_its_next_sync(
    settings: Settings, tmp_path: Path
) -> None:
    corpus = corpus_of(tmp_path / "corpus", README_ANCHORED, README_FILES)
    assert ingest(settings, corpus, collection="c").ok
    state = SyncState(settings.state_path)
    try:
        state.save("c", [replace(doc, rule="") for doc in state.documents("c").values()])  # as a v2 state left it
    finally:
        state.close()
    again = ingest(settings, corpus, collection="c")
    assert again.ok and again.chunks == 0  # nothing re-embedded: the state alone is brought up to date
    (corpus / "access.yaml").write_text(README_ANY_DEPTH)
    preview = ingest(settings, corpus, collection="c", dry_run=True)
    assert preview.widened == [
        "hr/README.md: readers grow from [hr] to [everyone] (decided by line 4 'hr/**' [hr] before, by line 6 "
        "'README.md' [everyone] now)"
    ]
