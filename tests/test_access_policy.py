from __future__ import annotations

from pathlib import Path

import pytest

from assistant.errors import AccessPolicyError, DocumentError
from ingestion.access_policy import AccessPolicy, glob_to_regex, narrow


def write_policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "access.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("hr/**", "hr/a.md", True),
        ("hr/**", "hr/sub/deep/a.md", True),
        ("hr/**", "hrx/a.md", False),
        ("hr/*", "hr/sub/a.md", False),
        ("*.md", "a.md", True),
        ("*.md", "hr/a.md", False),  # anchored at the root, unlike .gitignore
        ("**/*.md", "a.md", True),
        ("**/*.md", "x/y/a.md", True),
        ("hr/salary-bands.*", "hr/salary-bands.md", True),
        ("doc?.txt", "doc1.txt", True),
        ("doc?.txt", "doc10.txt", False),
        ("a+b/[x].md", "a+b/[x].md", True),  # regex characters are literal
    ],
)
def test_glob_semantics(glob: str, path: str, matches: bool) -> None:
    assert bool(glob_to_regex(glob).match(path)) is matches


def test_last_matching_rule_wins(tmp_path: Path) -> None:
    policy = AccessPolicy.load(
        write_policy(
            tmp_path,
            "rules:\n"
            "  - match: '**'\n    groups: [everyone]\n"
            "  - match: 'hr/**'\n    groups: [hr]\n"
            "  - match: 'hr/handbook.md'\n    groups: [everyone, hr]\n",
        )
    )
    assert policy.rule_for("company/a.md").groups == ("everyone",)  # type: ignore[union-attr]
    assert policy.rule_for("hr/pay.md").groups == ("hr",)  # type: ignore[union-attr]
    assert policy.rule_for("hr/handbook.md").groups == ("everyone", "hr")  # type: ignore[union-attr]
    assert policy.rule_for("hr/pay.md").line == 4  # type: ignore[union-attr]


def test_uncovered_document_has_no_rule(tmp_path: Path) -> None:
    policy = AccessPolicy.load(write_policy(tmp_path, "rules:\n  - match: 'company/**'\n    groups: [everyone]\n"))
    assert policy.rule_for("drafts/memo.md") is None


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("rules:\n  - match: 'a/**'\n    groups: [x\n", 4, "invalid YAML"),
        ("rules:\n  - match: 'a/**'\n", 2, "needs 'groups:'"),
        ("rules:\n  - match: 'a/**'\n    groups: []\n", 2, "groups list is empty"),
        ("rules:\n  - groups: [a]\n", 2, "no 'match:'"),
        ("rules:\n  - match: 'a'\n    groups: [a]\n    owner: bob\n", 2, "unknown key"),
        ("rules:\n  - match: '/etc/**'\n    groups: [a]\n", 2, "relative to the corpus root"),
        ("rules:\n  - match: 'a'\n    groups: ['bad group']\n", 2, "invalid group name"),
        ("rules: everyone\n", 1, "must be a list"),
        ("rules:\n  - match: 'a'\n    groups: [everyone]\n    groups: [hr]\n", 2, "'groups' appears twice"),
        ("- a\n- b\n", 1, "expected a mapping"),
    ],
)
def test_invalid_policy_names_line_and_reason(tmp_path: Path, text: str, line: int, reason: str) -> None:
    path = write_policy(tmp_path, text)
    with pytest.raises(AccessPolicyError) as caught:
        AccessPolicy.load(path)
    assert caught.value.line == line
    assert reason in str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_missing_policy_fails_closed(tmp_path: Path) -> None:
    with pytest.raises(AccessPolicyError, match="missing"):
        AccessPolicy.load(tmp_path / "access.yaml")


def test_front_matter_narrows_but_never_widens(tmp_path: Path) -> None:
    policy = AccessPolicy.load(
        write_policy(tmp_path, "rules:\n  - match: 'finance/**'\n    groups: [finance, executives]\n")
    )
    rule = policy.rule_for("finance/budget.md")
    assert rule is not None
    assert narrow(rule, None, "finance/budget.md") == ("finance", "executives")
    assert narrow(rule, ("executives",), "finance/budget.md") == ("executives",)
    with pytest.raises(DocumentError, match="may only narrow"):
        narrow(rule, ("executives", "everyone"), "finance/budget.md")
