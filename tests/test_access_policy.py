from __future__ import annotations

from pathlib import Path

import pytest

from assistant.errors import AccessPolicyError, DocumentError
from ingestion.access_policy import AccessPolicy, AccessRule, compile_pattern, narrow


def write_policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "access.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# The table of access-rule semantics in docs/ingestion.md: every row is checked here.
GLOB_SEMANTICS = [
    ("hr/**", "hr/a.md", True),
    ("hr/**", "hr/sub/deep/a.md", True),
    ("hr/**", "hrx/a.md", False),
    ("hr/*", "hr/a.md", True),
    ("hr/*", "hr/sub/a.md", False),  # * stays inside one folder (as CODEOWNERS reads docs/*)
    ("secret/", "secret/a.md", True),  # a trailing / is a folder and everything in it
    ("secret/", "x/secret/a.md", True),  # no / before the end: at any depth, as .gitignore reads it
    ("/secret/", "x/secret/a.md", False),  # a leading / anchors at the corpus root
    ("./legal/**", "legal/nda.md", True),  # ./ is the corpus root too
    ("./legal/**", "x/legal/nda.md", False),
    ("deep/**/", "deep/x/a.md", True),
    ("*.md", "a.md", True),
    ("*.md", "hr/a.md", True),  # no / in the pattern: any depth
    ("/*.md", "hr/a.md", False),
    ("**/*.md", "x/y/a.md", True),
    ("hr/salary-bands.*", "hr/salary-bands.md", True),
    ("doc?.txt", "doc1.txt", True),
    ("doc?.txt", "doc10.txt", False),
    ("board/notes-[0-9].md", "board/notes-3.md", True),  # [...] is a character class
    ("board/notes-[0-9].md", "board/notes-[0-9].md", False),
    ("a+b/?x?.md", "a+b/[x].md", True),  # ? stands in for a literal [ or ]
    ("fin/*.md", "fin/budget.MD", False),  # case-sensitive (reported as a near miss when nothing else matches)
    ("exec/r\u00e9sum\u00e9.md", "exec/re\u0301sume\u0301.md", True),  # NFC pattern, NFD file name
    ("exec/re\u0301sume\u0301.md", "exec/r\u00e9sum\u00e9.md", True),
]


@pytest.mark.parametrize(("glob", "path", "matches"), GLOB_SEMANTICS)
def test_glob_semantics(glob: str, path: str, matches: bool) -> None:
    rule = AccessRule(glob, ("g",), 1, compile_pattern(glob, "access.yaml", 1))
    assert rule.matches(path) is matches


@pytest.mark.parametrize(
    ("glob", "reason"),
    [
        ("!hr/**", "negation"),
        ("#notes.md", "comment"),
        ("legal\\**", "backslashes"),
        ("../x/**", "leave the corpus root"),
        ("/", "empty"),
    ],
)
def test_patterns_read_otherwise_by_gitignore_are_refused_naming_the_line(
    tmp_path: Path, glob: str, reason: str
) -> None:
    path = write_policy(
        tmp_path, f"rules:\n  - match: '**'\n    groups: [everyone]\n  - match: '{glob}'\n    groups: [hr]\n"
    )
    with pytest.raises(AccessPolicyError, match=reason) as caught:
        AccessPolicy.load(path)
    assert caught.value.line == 4


def test_rules_that_match_no_document_are_reported_with_a_case_hint(tmp_path: Path) -> None:
    """The issue's typos: with '**' for everyone first, none of these may go unnoticed."""
    policy = AccessPolicy.load(
        write_policy(
            tmp_path,
            "rules:\n"
            "  - match: '**'\n    groups: [everyone]\n"
            "  - match: 'secret/'\n    groups: [security]\n"
            "  - match: 'fin/*.md'\n    groups: [finance]\n"
            "  - match: 'board/notes-9.md'\n    groups: [executives]\n",
        )
    )
    ids = ["secret/keys.md", "fin/budget.MD", "company/a.md"]
    assert policy.rule_for("secret/keys.md").groups == ("security",)  # type: ignore[union-attr]
    unmatched = policy.unmatched(ids)
    assert [(u.line, u.match) for u in unmatched] == [(6, "fin/*.md"), (8, "board/notes-9.md")]
    assert "'fin/budget.MD' if case were ignored" in unmatched[0].message
    assert unmatched[0].message.startswith("access.yaml line 6: rule 'fin/*.md' matches no document")
    assert unmatched[1].hint == ""


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
        (
            "rules:\n  - match: 'a/**'\n    groups: [x\n",
            3,
            "opened here and still open at line 4",
        ),  # the bracket's line
        ("rules:\n  - match: 'a/**\n    groups: [x]\n  - match: b\n    groups: [y]\n", 2, "invalid YAML"),
        ("rules:\n  - match: 'a/**'\n", 2, "needs 'groups:'"),
        ("rules:\n  - match: 'a/**'\n    groups: []\n", 2, "groups list is empty"),
        ("rules:\n  - groups: [a]\n", 2, "no 'match:'"),
        ("rules:\n  - match: 'a'\n    groups: [a]\n    owner: bob\n", 2, "unknown key"),
        ("rules:\n  - match: 'a/../../etc/**'\n    groups: [a]\n", 2, "leave the corpus root"),
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


def test_a_rule_every_document_of_which_a_later_rule_decides_is_reported_naming_that_rule(tmp_path: Path) -> None:
    """The review's case: `hr/**` after `hr/salary/**` gives every salary document to all of hr, silently."""
    policy = AccessPolicy.load(
        write_policy(
            tmp_path,
            "rules:\n"
            "  - {match: 'company/**', groups: [everyone]}\n"
            "  - {match: 'hr/salary/**', groups: [hr-compensation]}\n"
            "  - {match: 'hr/**', groups: [hr]}\n",
        )
    )
    ids = ["company/a.md", "hr/salary/bands.md", "hr/salary/2026.md", "hr/leave.md"]
    [shadowed] = policy.unmatched(ids)
    assert (shadowed.line, shadowed.matched, [r.line for r in shadowed.shadowed_by]) == (3, 2, [4])
    assert shadowed.message == (
        "access.yaml line 3: rule 'hr/salary/**' decides no document: the 2 it matches are all decided by the later "
        "rule(s) 'hr/**' (line 4), which override it; move it below them or narrow them"
    )
    reordered = AccessPolicy([policy.rules[0], policy.rules[2], policy.rules[1]], policy.origin)
    assert reordered.unmatched(ids) == []  # the owner's fix: the narrower rule last


def test_a_slash_free_pattern_deciding_a_document_inside_another_rules_folder_is_warned(tmp_path: Path) -> None:
    policy = AccessPolicy.load(
        write_policy(
            tmp_path,
            "rules:\n  - {match: 'hr/**', groups: [hr]}\n  - {match: 'README.md', groups: [everyone]}\n",
        )
    )
    ids = ["README.md", "hr/README.md", "hr/pay.md"]
    assert policy.rule_for("hr/README.md") == policy.rules[1]  # .gitignore semantics: any depth
    [warning] = policy.depth_warnings(ids)
    assert warning.doc_id == "hr/README.md" and warning.covered_by == policy.rules[0]
    assert "write '/README.md' for the corpus root only, or '**/README.md'" in warning.message
    anchored = AccessPolicy.load(
        write_policy(tmp_path, "rules:\n  - {match: 'hr/**', groups: [hr]}\n  - {match: '/README.md', groups: [all]}\n")
    )
    assert anchored.depth_warnings(ids) == []
    assert anchored.rule_for("hr/README.md") == anchored.rules[0]
