"""The diff between a source and the sync state: what a sync will add, change, delete, re-group or leave.

Planning reads and hashes bytes only; nothing is parsed or embedded, so `--dry-run` is cheap and exact about
what changed. The content hash covers the pipeline's fingerprint (embedder, chunking, BM25 settings) as well,
so changing any of them re-embeds every document, and the version of the reader of each document's kind, so a
reader whose output changed re-reads only the documents it parses.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from assistant.errors import DocumentError
from ingestion.access_policy import AccessRule, DepthWarning, UnmatchedRule, narrow
from ingestion.readers import reader_version
from ingestion.sources import Source, SourceEntry, SourceFailure
from ingestion.state import DocumentState, Widening


@dataclass(frozen=True)
class PlannedDocument:
    entry: SourceEntry
    content_hash: str
    rule: AccessRule
    previous: DocumentState | None


@dataclass(frozen=True)
class Regroup:
    doc_id: str
    previous: DocumentState
    groups: tuple[str, ...]
    rule: str  # the rule deciding the new groups (`AccessRule.where`)

    @property
    def widened(self) -> Widening | None:
        return widening(self.previous, self.groups, self.rule)


@dataclass
class SyncPlan:
    added: list[PlannedDocument] = field(default_factory=list)
    changed: list[PlannedDocument] = field(default_factory=list)
    regrouped: list[Regroup] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # indexed documents gone from the source
    uncovered: list[str] = field(default_factory=list)  # paths no access rule matches: never indexed
    withdrawn: list[str] = field(default_factory=list)  # indexed documents that lost their access: removed
    failed: list[SourceFailure] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # absent from the source, kept: some entries were unidentifiable
    unmatched_rules: list[UnmatchedRule] = field(default_factory=list)  # access rules that decide no document
    depth_warnings: list[DepthWarning] = field(default_factory=list)  # slash-free patterns deciding deeper files
    widened: list[Widening] = field(default_factory=list)  # indexed documents whose readers would grow
    # Unchanged documents whose deciding rule is now another line (or was not recorded yet): their state rows are
    # brought up to date, so that a later widening names the rule that decided them before.
    rule_moved: list[DocumentState] = field(default_factory=list)


def content_hash(fingerprint: str, kind: str, raw: bytes) -> str:
    """The pipeline's fingerprint, the reader's version for `kind` and the bytes: any change means re-indexing."""
    return hashlib.sha256((fingerprint + reader_version(kind)).encode() + b"\0" + raw).hexdigest()


def plan_sync(source: Source, indexed: dict[str, DocumentState], fingerprint: str) -> SyncPlan:
    plan = SyncPlan()
    seen: set[str] = set()
    for item in source.entries():
        if isinstance(item, SourceFailure):
            plan.failed.append(item)
            if item.doc_id is not None:
                seen.add(item.doc_id)
                if item.doc_id in indexed:
                    rule = source.policy.rule_for(item.doc_id)
                    keep_serving_under_policy(plan, item.doc_id, rule, indexed[item.doc_id])
            continue
        seen.add(item.doc_id)
        previous = indexed.get(item.doc_id)
        rule = source.policy.rule_for(item.doc_id)
        if rule is None:
            plan.uncovered.append(item.path)
            if previous is not None:
                plan.withdrawn.append(item.doc_id)
            continue
        try:
            raw = source.read(item)
        except DocumentError as exc:
            plan.failed.append(SourceFailure(item.path, str(exc), doc_id=item.doc_id))
            if previous is not None:
                keep_serving_under_policy(plan, item.doc_id, rule, previous)
            continue
        planned = PlannedDocument(item, content_hash(fingerprint, item.kind, raw), rule, previous)
        if previous is None:
            plan.added.append(planned)
        elif previous.content_hash != planned.content_hash:
            plan.changed.append(planned)
        else:
            _plan_unchanged_bytes(plan, planned, previous)
    gone = sorted(doc_id for doc_id in indexed if doc_id not in seen)
    if any(f.doc_id is None for f in plan.failed):
        for doc_id in gone:  # one may be the unreadable entry: kept, with the groups today's policy gives them
            keep_serving_under_policy(plan, doc_id, source.policy.rule_for(doc_id), indexed[doc_id])
        plan.held = [doc_id for doc_id in gone if doc_id not in plan.withdrawn]
    else:
        plan.deleted = gone
    plan.ignored = source.ignored()
    plan.unmatched_rules = source.policy.unmatched(seen)
    plan.depth_warnings = source.policy.depth_warnings(seen)
    plan.widened = _widenings(plan)
    return plan


def widening(previous: DocumentState, groups: tuple[str, ...], rule: str) -> Widening | None:
    """The widening when `groups` holds a group `previous` was not served to (a group added, or a broader one)."""
    if set(groups) <= set(previous.groups):
        return None
    return Widening(previous.doc_id, previous.groups, groups, previous.rule, rule)


def _widenings(plan: SyncPlan) -> list[Widening]:
    """Documents whose readers this plan would grow: re-grouped ones exactly; changed ones as far as the policy
    decides (their front matter is read with the sync, which checks again)."""
    found = [change.widened for change in plan.regrouped]
    for planned in plan.changed:
        if planned.previous is None:
            continue
        groups = groups_under_policy(planned.rule, planned.previous)
        if groups is not None:
            found.append(widening(planned.previous, groups, planned.rule.where))
    return sorted((w for w in found if w is not None), key=lambda w: w.doc_id)


def _plan_unchanged_bytes(plan: SyncPlan, planned: PlannedDocument, previous: DocumentState) -> None:
    """Same bytes: the document is unchanged, or only the policy moved it to other groups."""
    try:
        groups = narrow(planned.rule, previous.front_matter_groups, planned.entry.doc_id)
    except DocumentError as exc:
        plan.failed.append(SourceFailure(planned.entry.path, str(exc), doc_id=planned.entry.doc_id))
        plan.withdrawn.append(planned.entry.doc_id)  # fail closed: its groups can no longer be decided
        return
    if groups != previous.groups:
        plan.regrouped.append(Regroup(planned.entry.doc_id, previous, groups, planned.rule.where))
    else:
        plan.unchanged.append(planned.entry.doc_id)
        if previous.rule != planned.rule.where:
            plan.rule_moved.append(replace(previous, rule=planned.rule.where))


def groups_under_policy(rule: AccessRule | None, previous: DocumentState) -> tuple[str, ...] | None:
    """The groups an indexed version may keep under the current policy; None: it must be withdrawn."""
    if rule is None:
        return None
    try:
        return narrow(rule, previous.front_matter_groups, previous.doc_id)
    except DocumentError:
        return None


def keep_serving_under_policy(plan: SyncPlan, doc_id: str, rule: AccessRule | None, previous: DocumentState) -> None:
    """A document that failed keeps its indexed version, but only with the groups today's policy gives it."""
    groups = groups_under_policy(rule, previous)
    if groups is None or rule is None:
        plan.withdrawn.append(doc_id)
    elif groups != previous.groups:
        plan.regrouped.append(Regroup(doc_id, previous, groups, rule.where))
