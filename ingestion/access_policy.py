"""`access.yaml`: which SSO groups may read which documents of a corpus.

    rules:
      - match: "company/**"        # glob relative to the corpus root; * stays in one folder, ** crosses folders
        groups: [everyone]
      - match: "hr/salary-bands.*"
        groups: [hr-compensation, executives]

The last rule that matches a document id wins (as in CODEOWNERS). A document no rule matches is uncovered and
is not indexed: access fails closed. A document's front matter may narrow its groups, never widen them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from assistant.errors import AccessPolicyError, AccessRuleError

POLICY_FILE = "access.yaml"
_GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]*$")


@dataclass(frozen=True)
class AccessRule:
    match: str
    groups: tuple[str, ...]
    line: int
    pattern: re.Pattern[str]


def glob_to_regex(glob: str) -> re.Pattern[str]:
    """Anchored glob over `/`-separated ids: `*` and `?` never cross `/`; `**` crosses any number of folders."""
    out: list[str] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")  # zero or more whole folders
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


class AccessPolicy:
    def __init__(self, rules: list[AccessRule], origin: str) -> None:
        self.rules = rules
        self.origin = origin

    @classmethod
    def grant_all(cls, groups: list[str], origin: str = "--groups") -> AccessPolicy:
        """One rule giving every document to `groups` (e.g. an evaluation corpus with no access.yaml)."""
        clean = _check_groups(groups, origin, None)
        return cls([AccessRule("**", clean, 0, glob_to_regex("**"))], origin)

    @classmethod
    def load(cls, path: Path) -> AccessPolicy:
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise AccessPolicyError(
                where, None, "missing: every corpus root needs an access.yaml; without it no document is indexed"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise AccessPolicyError(where, None, f"cannot be read ({exc})") from exc
        try:
            root = yaml.compose(text)
        except yaml.MarkedYAMLError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark else None
            raise AccessPolicyError(where, line, f"invalid YAML: {exc.problem}") from exc
        except yaml.YAMLError as exc:  # e.g. control characters: no line is known
            raise AccessPolicyError(where, None, f"invalid YAML: {exc}".replace("\n", " ")) from exc
        if not isinstance(root, yaml.MappingNode):
            raise AccessPolicyError(where, 1, "expected a mapping with a 'rules:' list at the top")
        rules_node = _value_of(root, "rules", where)
        if not isinstance(rules_node, yaml.SequenceNode):
            line = rules_node.start_mark.line + 1 if rules_node else 1
            raise AccessPolicyError(where, line, "'rules:' must be a list of {match: GLOB, groups: [..]}")
        rules = [_parse_rule(node, where) for node in rules_node.value]
        return cls(rules, where)

    def rule_for(self, doc_id: str) -> AccessRule | None:
        """The last rule matching `doc_id`, or None when the document is uncovered."""
        for rule in reversed(self.rules):
            if rule.pattern.match(doc_id):
                return rule
        return None


def narrow(rule: AccessRule, front_matter_groups: tuple[str, ...] | None, doc_id: str) -> tuple[str, ...]:
    """Groups of a document: its rule's groups, narrowed by its front matter's `groups:` when present."""
    if front_matter_groups is None:
        return rule.groups
    wider = sorted(set(front_matter_groups) - set(rule.groups))
    if wider:
        raise AccessRuleError(
            f"front matter groups {wider} are not granted by {POLICY_FILE} line {rule.line} "
            f"({list(rule.groups)}); front matter may only narrow access: fix the document or the policy"
        )
    return tuple(g for g in rule.groups if g in front_matter_groups)


def _value_of(mapping: yaml.MappingNode, key: str, where: str) -> yaml.Node | None:
    names = [k.value for k, _ in mapping.value if isinstance(k, yaml.ScalarNode)]
    if names.count(key) > 1:  # YAML tools disagree on which duplicate wins: refuse rather than guess
        raise AccessPolicyError(where, mapping.start_mark.line + 1, f"key {key!r} appears twice")
    for key_node, value_node in mapping.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            node: yaml.Node = value_node
            return node
    return None


def _parse_rule(node: yaml.Node, where: str) -> AccessRule:
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.MappingNode):
        raise AccessPolicyError(where, line, "each rule must be a mapping {match: GLOB, groups: [..]}")
    keys = {k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    unknown = sorted(keys - {"match", "groups"})
    if unknown:
        raise AccessPolicyError(where, line, f"unknown key(s) {unknown} in rule; a rule has only match and groups")
    match_node = _value_of(node, "match", where)
    if not isinstance(match_node, yaml.ScalarNode) or not match_node.value.strip():
        raise AccessPolicyError(where, line, "rule has no 'match:' glob")
    glob = match_node.value.strip()
    if glob.startswith("/") or ".." in glob.split("/"):
        raise AccessPolicyError(where, line, f"match {glob!r} must be relative to the corpus root")
    groups_node = _value_of(node, "groups", where)
    if not isinstance(groups_node, yaml.SequenceNode):
        raise AccessPolicyError(where, line, f"rule {glob!r} needs 'groups:' as a list, e.g. groups: [everyone]")
    names = [g.value if isinstance(g, yaml.ScalarNode) else "" for g in groups_node.value]
    return AccessRule(glob, _check_groups(names, where, line), line, glob_to_regex(glob))


def _check_groups(names: list[str], where: str, line: int | None) -> tuple[str, ...]:
    cleaned = tuple(dict.fromkeys(str(n).strip() for n in names))
    if not cleaned:
        raise AccessPolicyError(where, line, "groups list is empty; name at least one group (fail closed otherwise)")
    bad = [n for n in cleaned if not _GROUP_NAME.match(n)]
    if bad:
        raise AccessPolicyError(where, line, f"invalid group name(s) {bad}")
    return cleaned
