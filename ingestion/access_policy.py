"""`access.yaml`: which SSO groups may read which documents of a corpus.

    rules:
      - match: "company/**"        # a .gitignore pattern, relative to the corpus root
        groups: [everyone]
      - match: "hr/salary-bands.*"
        groups: [hr-compensation, executives]

Patterns mean what they mean in a .gitignore file (git's documented semantics, matched by `pathspec`'s
"gitignore" pattern): a pattern with a `/` before its end is anchored at the root, one without matches at any
depth; a trailing `/` means a folder and everything in it; `*` and `?` stay inside one folder, `**` crosses
folders; `[0-9]` is a character class. Matching is case-sensitive, on NFC-normalised Unicode. Two additions:
a leading `./` anchors like a leading `/`; what .gitignore would read differently from a path (`!` negation, a
`#` comment, backslash escapes) is refused with an error naming the line.

The last rule that matches a document id wins (as in CODEOWNERS). A document no rule matches is uncovered and
is not indexed: access fails closed. A document's front matter may narrow its groups, never widen them.

A rule that decides no document is reported by every sync, and `assistant ingest --strict` refuses to sync while
one exists: a rule that matches nothing (most likely a typo) and a rule whose every document is decided by a later
rule (shadowed: `hr/salary/**` above `hr/**`) both leave broader groups in force where the owner meant narrower
ones. A pattern without a `/` matches at any depth, so `README.md` meant for the root also decides `hr/README.md`:
such a pattern deciding a document inside a folder that another rule covers is warned about.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml
from pathspec.patterns.gitignore import GitIgnorePatternError
from pathspec.patterns.gitignore.basic import GitIgnoreBasicPattern

from assistant.errors import AccessPolicyError, AccessRuleError

POLICY_FILE = "access.yaml"
_GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]*$")


def normalise_id(doc_id: str) -> str:
    """Document ids and patterns compare as NFC: the same name typed on two systems is one name."""
    return unicodedata.normalize("NFC", doc_id)


@dataclass(frozen=True)
class AccessRule:
    match: str
    groups: tuple[str, ...]
    line: int
    pattern: GitIgnoreBasicPattern

    def matches(self, doc_id: str) -> bool:
        return self.pattern.match_file(normalise_id(doc_id)) is not None

    @property
    def where(self) -> str:
        """How a report names the rule: `line 7 'hr/**' [hr]`."""
        return f"line {self.line} {self.match!r} [{', '.join(self.groups)}]"


@dataclass(frozen=True)
class UnmatchedRule:
    """A rule that decides no document of the source: it matches none (most likely a typo), or every document it
    matches is decided by a later rule (shadowed). Either way broader groups apply where narrower ones were meant."""

    origin: str  # the policy file's name
    line: int
    match: str
    hint: str  # what it would match if case were ignored, or ""
    shadowed_by: tuple[AccessRule, ...] = ()  # the later rules deciding the documents it matches
    matched: int = 0  # how many documents it matches

    @property
    def problem(self) -> str:
        """What is wrong with the rule, without the file and line."""
        if not self.shadowed_by:
            return f"rule {self.match!r} matches no document{self.hint}"
        later = ", ".join(f"{r.match!r} (line {r.line})" for r in self.shadowed_by)
        return (
            f"rule {self.match!r} decides no document: the {self.matched} it matches are all decided by the later "
            f"rule(s) {later}, which override it; move it below them or narrow them"
        )

    @property
    def message(self) -> str:
        return f"{self.origin} line {self.line}: {self.problem}"


@dataclass(frozen=True)
class DepthWarning:
    """A slash-free pattern deciding a document below the root, inside a folder another rule covers."""

    origin: str
    rule: AccessRule
    doc_id: str
    covered_by: AccessRule

    @property
    def message(self) -> str:
        bare = self.rule.match.rstrip("/")
        return (
            f"{self.origin} line {self.rule.line}: pattern {self.rule.match!r} has no '/', so it matches at any depth: "
            f"it decides {self.doc_id!r}, inside what rule {self.covered_by.match!r} (line {self.covered_by.line}) "
            f"covers; write '/{bare}' for the corpus root only, or '**/{bare}' if every folder is meant"
        )


def compile_pattern(glob: str, where: str, line: int | None) -> GitIgnoreBasicPattern:
    """A rule's `match:` as a gitignore pattern; what gitignore would not read as a plain path is refused."""
    glob = normalise_id(glob.strip())
    if glob.startswith("./"):
        glob = "/" + glob[2:]  # relative to the corpus root: anchored, as a leading "/" is
    problem = None
    if glob.startswith("!"):
        problem = "'!' (negation) has no meaning in access rules; a later rule with other groups overrides instead"
    elif glob.startswith("#"):
        problem = "a pattern starting with '#' is a comment in gitignore syntax; write [#] for a literal '#'"
    elif "\\" in glob:
        problem = "backslashes are not accepted (separators are '/'; use [*] to match a literal '*')"
    elif ".." in glob.split("/"):
        problem = "'..' would leave the corpus root; patterns are relative to it"
    elif glob.strip("/") == "":
        problem = "the pattern is empty"
    if problem is None:
        try:
            return GitIgnoreBasicPattern(glob)
        except GitIgnorePatternError as exc:
            problem = f"not a valid pattern ({exc})"
    raise AccessPolicyError(where, line, f"match {glob!r}: {problem}")


class AccessPolicy:
    def __init__(self, rules: list[AccessRule], origin: str) -> None:
        self.rules = rules
        self.origin = origin

    @classmethod
    def grant_all(cls, groups: list[str], origin: str = "--groups") -> AccessPolicy:
        """One rule giving every document to `groups` (e.g. an evaluation corpus with no access.yaml)."""
        clean = _check_groups(groups, origin, None)
        return cls([AccessRule("**", clean, 0, compile_pattern("**", origin, None))], origin)

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
            raise _yaml_error(where, exc) from exc
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
            if rule.matches(doc_id):
                return rule
        return None

    def unmatched(self, doc_ids: Iterable[str]) -> list[UnmatchedRule]:
        """The rules that decide none of `doc_ids`: those matching none (with a hint when only letter case stands in
        the way) and those shadowed (every document they match is decided by a later rule)."""
        decided_by = {d: self.rule_for(d) for d in (normalise_id(d) for d in doc_ids)}
        origin = Path(self.origin).name
        found = []
        for rule in self.rules:
            matched = [d for d in decided_by if rule.matches(d)]
            if matched:
                deciders = {r.line: r for r in (decided_by[d] for d in matched) if r is not None}
                if rule.line not in deciders:
                    later = tuple(deciders[line] for line in sorted(deciders))
                    found.append(UnmatchedRule(origin, rule.line, rule.match, "", later, len(matched)))
                continue
            folded = compile_pattern(rule.match.casefold(), self.origin, rule.line)
            near = [d for d in decided_by if folded.match_file(d.casefold()) is not None]
            hint = f" (it would match {near[0]!r} if case were ignored: matching is case-sensitive)" if near else ""
            found.append(UnmatchedRule(origin, rule.line, rule.match, hint))
        return found

    def depth_warnings(self, doc_ids: Iterable[str]) -> list[DepthWarning]:
        """One warning per slash-free rule that decides a document below the root which another rule also matches:
        since gitignore semantics, `README.md` means every README, not the top-level one."""
        deeper = {d: self.rule_for(d) for d in (normalise_id(d) for d in doc_ids) if "/" in d}  # decided once
        warnings = []
        for rule in self.rules:
            if "/" in rule.match.rstrip("/") or rule.match.startswith("./"):
                continue  # anchored or explicit about depth
            for doc_id, decider in deeper.items():
                if decider is not rule:
                    continue
                other = next((r for r in reversed(self.rules) if r is not rule and r.matches(doc_id)), None)
                if other is not None:
                    warnings.append(DepthWarning(Path(self.origin).name, rule, doc_id, other))
                    break  # one example per rule is enough to act on
        return warnings


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


def _yaml_error(where: str, exc: yaml.MarkedYAMLError) -> AccessPolicyError:
    """The line to fix: where an unclosed bracket or quote was opened, not where the parser gave up on it."""
    noticed = exc.problem_mark.line + 1 if exc.problem_mark else None
    opened = exc.context_mark.line + 1 if exc.context_mark else None
    if (
        opened is not None
        and opened != noticed
        and re.match(r"while (parsing a flow|scanning a quoted)", exc.context or "")
    ):
        return AccessPolicyError(
            where, opened, f"invalid YAML: opened here and still open at line {noticed} ({exc.problem})"
        )
    return AccessPolicyError(where, noticed, f"invalid YAML: {exc.problem}")


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
    groups_node = _value_of(node, "groups", where)
    if not isinstance(groups_node, yaml.SequenceNode):
        raise AccessPolicyError(where, line, f"rule {glob!r} needs 'groups:' as a list, e.g. groups: [everyone]")
    names = [g.value if isinstance(g, yaml.ScalarNode) else "" for g in groups_node.value]
    return AccessRule(glob, _check_groups(names, where, line), line, compile_pattern(glob, where, line))


def _check_groups(names: list[str], where: str, line: int | None) -> tuple[str, ...]:
    cleaned = tuple(dict.fromkeys(str(n).strip() for n in names))
    if not cleaned:
        raise AccessPolicyError(where, line, "groups list is empty; name at least one group (fail closed otherwise)")
    bad = [n for n in cleaned if not _GROUP_NAME.match(n)]
    if bad:
        raise AccessPolicyError(where, line, f"invalid group name(s) {bad}")
    return cleaned
