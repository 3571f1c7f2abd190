"""The review queue: the week's thumbs-down, answers shown yellow (the label check failed: the line goes beyond
its quotes, or nothing supports it), refused questions and low-evidence answers, grouped by similar question and
ranked by their most telling reason, then by how often asked, each with what retrieval found. A reviewer turns
a group into a golden question, a training item or a corpus gap, or dismisses it; either way the group leaves the
queue.

Sources are the question log and the feedback file in the data directory (`assistant.question_log`,
`assistant.feedback`). They hold what a trace holds, question text and document metadata but never document
text. The queue is shown to one reviewer at a time (`evals.redaction`): a group shows its questions, titles and
document ids only where the reviewer may read every document its questions retrieved AND holds every group each
of its askers held (a question can carry what its asker knows from restricted work even when it retrieved nothing
or only public documents), else a redacted entry (counts, reasons, its id to hand over). A question whose asker's
groups are unknown (a thumbs-down without its logged question) is redacted for every reviewer: fail closed.
Askers appear under stable pseudonyms and without their groups. A decision names a group the reviewer can see and
a document the reviewer may read.

Accepted items are appended to their sets with provenance (the trace, when the question was asked, why it was
queued, who accepted it, when). A training item passes the tuning data rules first: it may not repeat or
paraphrase a held-out evaluation question nor near-duplicate an item of the set, its quotes must be verbatim in
its document, and every group of that document must be in `allowed_groups` (one adapter serves every user).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from assistant.access import Principal
from assistant.components import Components
from assistant.errors import SourceError
from assistant.feedback import Feedback, read_feedback
from assistant.jsonl import append_record, read_records
from assistant.prompt import normalise_space
from assistant.question_log import LoggedQuestion, QuestionLog
from assistant.settings import Settings
from evals.held_out import NEAR_DUPLICATE, eval_overlap, held_out_index, jaccard, words
from evals.redaction import DocumentGroups, Pseudonyms, why_redacted

Reason = Literal["thumbs down", "beyond its quotes", "not supported", "refused", "low evidence"]
# How a group is ranked: by its most telling reason (a reader said wrong; the label check failed: shown yellow;
# nothing answered; an answer that barely cleared the gate), then by how often it was asked.
SEVERITY: dict[str, int] = {
    "thumbs down": 4,
    "not supported": 3,
    "beyond its quotes": 3,
    "refused": 2,
    "low evidence": 1,
}
YELLOW: dict[str, Reason] = {"quoted": "beyond its quotes", "unsupported": "not supported"}  # label -> reason
Decision = Literal["golden", "training", "corpus gap", "dismissed"]
Embed = Callable[[list[str]], np.ndarray]  # unit-length rows


@dataclass
class ReviewItem:
    id: str
    question: str
    user_id: str
    groups: list[str] | None  # the asker's; None: unknown (feedback without its logged question), shown to no one
    created: str
    reasons: list[Reason]
    retrieved: list[dict[str, Any]]  # rank, doc_id, title, groups (no text)
    evidence: float | None = None
    trace_id: str | None = None
    comment: str | None = None  # the user's, with a thumbs down
    collection: str | None = None  # where retrieval ran; None: unknown (feedback without its logged question)


@dataclass
class ReviewGroup:
    """Similar questions, most recent first; the group is named by its first item's id."""

    items: list[ReviewItem]

    @property
    def id(self) -> str:
        return self.items[0].id

    @property
    def question(self) -> str:
        return self.items[0].question

    @property
    def reasons(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for item in self.items:
            for reason in item.reasons:
                counted[reason] = counted.get(reason, 0) + 1
        return counted

    @property
    def documents(self) -> list[dict[str, Any]]:
        """The documents retrieved for these questions (best rank first), without repeats."""
        seen: dict[str, dict[str, Any]] = {}
        for hit in sorted((h for i in self.items for h in i.retrieved), key=lambda h: h.get("rank", 0)):
            seen.setdefault(hit["doc_id"], {k: hit[k] for k in ("doc_id", "title", "groups") if k in hit})
        return list(seen.values())

    def to_json(self) -> dict[str, Any]:
        """What a reviewer sees: askers (pseudonymous after `for_reviewer`) without their groups, which would help
        tell who they are; decisions read the groups from the items themselves."""
        return {
            "id": self.id,
            "question": self.question,
            "asked": len(self.items),
            "reasons": self.reasons,
            "documents": self.documents,
            "items": [{k: v for k, v in asdict(i).items() if k != "groups"} for i in self.items],
        }


def item_id(user_id: str, question: str, created: str) -> str:
    return hashlib.sha256(f"{user_id}\x00{question}\x00{created}".encode()).hexdigest()[:12]


def since(days: float, now: float | None = None) -> str:
    """The ISO timestamp `days` ago (the logs' clock: local time, second precision)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime((now or time.time()) - days * 86400))


# -- collecting -------------------------------------------------------------------------------------
def collect(
    questions: Sequence[LoggedQuestion],
    feedback: Sequence[Feedback],
    decided: set[str],
    *,
    start: str,
    low_evidence_margin: float,
) -> list[ReviewItem]:
    """Queue-worthy questions asked at or after `start` and not yet decided, most recent first. An answer whose
    evidence cleared the threshold by less than `low_evidence_margin` is a low-evidence answer."""
    items: dict[str, ReviewItem] = {}
    by_trace: dict[str, str] = {}
    by_asker: dict[tuple[str, str], str] = {}  # (user, question) -> the latest entry: feedback without tracing
    for q in questions:
        if q.created < start:
            continue
        reasons: list[Reason] = []
        if q.refused:
            reasons.append("refused")
        elif q.label in YELLOW:
            reasons.append(YELLOW[q.label])  # shown yellow: which check failed
        elif q.evidence is not None and q.threshold is not None and q.evidence < q.threshold + low_evidence_margin:
            reasons.append("low evidence")
        identifier = item_id(q.user_id, q.question, q.created)
        if q.trace_id:
            by_trace[q.trace_id] = identifier
        by_asker[(q.user_id, q.question)] = identifier
        items[identifier] = ReviewItem(
            identifier,
            q.question,
            q.user_id,
            q.groups,
            q.created,
            reasons,
            q.retrieved,
            q.evidence,
            q.trace_id,
            collection=q.collection,
        )
    for f in feedback:
        if f.helpful or f.created < start:
            continue
        joined = items.get(by_trace.get(f.trace_id or "") or by_asker.get((f.user_id, f.question), ""))
        if joined is not None:
            joined.reasons.append("thumbs down")
            joined.comment = f.comment
            continue
        identifier = item_id(f.user_id, f.question, f.created)
        retrieved = [{"rank": n, "doc_id": doc, "title": doc, "groups": []} for n, doc in enumerate(f.cited, 1)]
        items[identifier] = ReviewItem(
            identifier, f.question, f.user_id, None, f.created, ["thumbs down"], retrieved, None, f.trace_id, f.comment
        )
    queued = [i for i in items.values() if i.reasons and i.id not in decided]
    return sorted(queued, key=lambda i: i.created, reverse=True)


def group_similar(items: Sequence[ReviewItem], embed: Embed, threshold: float) -> list[ReviewGroup]:
    """Greedy grouping: each question joins the first group whose first question it resembles (cosine of their
    embeddings >= `threshold`), else starts a group. Ranked by the group's most telling reason (`SEVERITY`), then
    largest first."""
    if not items:
        return []
    vectors = embed([i.question for i in items])
    groups: list[ReviewGroup] = []
    heads: list[int] = []
    for index, item in enumerate(items):
        similar = [g for g, head in enumerate(heads) if float(vectors[index] @ vectors[head]) >= threshold]
        if similar:
            groups[similar[0]].items.append(item)
        else:
            groups.append(ReviewGroup([item]))
            heads.append(index)
    return sorted(
        groups, key=lambda g: (max(SEVERITY[r] for i in g.items for r in i.reasons), len(g.items)), reverse=True
    )


# -- deciding ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReviewFiles:
    """Where decisions and accepted items go."""

    decisions: Path
    golden: Path
    training_items: Path
    corpus_gaps: Path

    def decided(self) -> set[str]:
        return {i for record in read_records(self.decisions) for i in record.get("ids", [])}


def files_of(settings: Settings) -> ReviewFiles:
    return ReviewFiles(
        decisions=settings.data_dir / "review-decisions.jsonl",
        golden=settings.review.golden,
        training_items=settings.review.training_items,
        corpus_gaps=settings.data_dir / "corpus-gaps.jsonl",
    )


# -- what one reviewer sees -------------------------------------------------------------------------
@dataclass(frozen=True)
class RedactedGroup:
    """A group the reviewer may not see in full: its questions retrieved documents the reviewer may not read, or
    were asked by someone with groups the reviewer does not hold (or unknown groups). Counts only, and its id."""

    id: str
    asked: int
    reasons: dict[str, int]
    documents: int
    unreadable: int
    outside_askers: int = 0  # questions asked by someone with groups the reviewer does not hold
    unknown_askers: int = 0  # questions whose asker's groups are unknown

    @property
    def why(self) -> str:
        return why_redacted(
            self.unreadable, self.documents, outside_askers=self.outside_askers, unknown_askers=self.unknown_askers
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "redacted": True, "why": self.why}


@dataclass
class ReviewQueue:
    """The open groups as one reviewer sees them: in full (askers pseudonymous), or redacted."""

    groups: list[ReviewGroup]
    redacted: list[RedactedGroup]

    def to_json(self) -> list[dict[str, Any]]:
        return [g.to_json() for g in self.groups] + [r.to_json() for r in self.redacted]


def for_reviewer(
    groups: Sequence[ReviewGroup],
    reviewer: Principal,
    documents: DocumentGroups,
    pseudonyms: Pseudonyms,
    default_collection: str,
) -> ReviewQueue:
    """Each group in full where `reviewer` may read every document its questions retrieved and holds every group
    its askers held, else redacted."""
    queue = ReviewQueue([], [])
    for group in groups:
        retrieved: dict[str, bool] = {}  # doc id -> readable by the reviewer
        outside_askers = unknown_askers = 0
        for item in group.items:
            if item.groups is None:
                unknown_askers += 1
            elif not reviewer.holds_all(item.groups):
                outside_askers += 1
            for hit in item.retrieved:
                doc = str(hit["doc_id"])
                doc_groups = documents.groups(item.collection or default_collection, doc, hit.get("groups") or ())
                retrieved[doc] = retrieved.get(doc, True) and reviewer.may_read(doc_groups)
        unreadable = sum(not readable for readable in retrieved.values())
        if unreadable or outside_askers or unknown_askers:
            queue.redacted.append(
                RedactedGroup(
                    group.id,
                    len(group.items),
                    group.reasons,
                    len(retrieved),
                    unreadable,
                    outside_askers=outside_askers,
                    unknown_askers=unknown_askers,
                )
            )
        else:
            queue.groups.append(ReviewGroup([replace(i, user_id=pseudonyms.of(i.user_id)) for i in group.items]))
    return queue


def open_queue(components: Components, days: float, reviewer: Principal) -> ReviewQueue:
    """The open review groups of the last `days` days, largest first, as `reviewer` may see them (the CLI and
    the quality page). Groups are formed over every question, so a group has the same id for every reviewer."""
    settings = components.settings
    items = collect(
        QuestionLog(settings.data_dir).read(),
        read_feedback(settings.data_dir),
        files_of(settings).decided(),
        start=since(days),
        low_evidence_margin=settings.review.low_evidence_margin,
    )
    groups = group_similar(items, components.embedder.embed_documents, settings.review.group_similarity)
    documents = DocumentGroups(settings)
    return for_reviewer(groups, reviewer, documents, Pseudonyms(settings.data_dir), components.collection(None))


def find_group(components: Components, group_id: str, days: float, reviewer: Principal) -> ReviewGroup:
    """The open group `group_id`, if `reviewer` may see it in full."""
    queue = open_queue(components, days, reviewer)
    for group in queue.groups:
        if group.id == group_id:
            return group
    for redacted in queue.redacted:
        if redacted.id == group_id:
            raise SourceError(f"review group {group_id!r} is redacted for you: {redacted.why}")
    raise SourceError(f"no open review group {group_id!r} in the last {days:g} days; `assistant review` lists them")


def indexed_document(
    components: Components, collection: str | None, doc_id: str, reviewer: Principal
) -> tuple[list[str] | None, str]:
    """A document's groups and indexed text (its chunks in order); (None, "") when it is not indexed or when
    `reviewer` may not read it (the same answer: a reviewer learns nothing of documents outside their groups)."""
    chunks = [c for c in components.store.iter_chunks(components.collection(collection)) if c.doc_id == doc_id]
    if not chunks or not reviewer.may_read(chunks[0].groups):
        return None, ""
    ordered = sorted(chunks, key=lambda c: int(c.chunk_index))
    return list(ordered[0].groups), "\n".join(c.text for c in ordered)


@dataclass(frozen=True)
class Provenance:
    reviewer: str
    trace_id: str | None
    asked: str
    reasons: dict[str, int]
    accepted: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))

    @classmethod
    def of(cls, group: ReviewGroup, reviewer: str) -> Provenance:
        return cls(reviewer, group.items[0].trace_id, group.items[0].created, group.reasons)


def _decide(files: ReviewFiles, group: ReviewGroup, decision: Decision, reviewer: str, target: Path | None) -> None:
    append_record(
        files.decisions,
        {
            "ids": [i.id for i in group.items],
            "decision": decision,
            "question": group.question,
            "reviewer": reviewer,
            "target": str(target) if target else None,
            "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        },
    )


def accept_golden(
    files: ReviewFiles,
    group: ReviewGroup,
    doc_id: str,
    doc_groups: Sequence[str] | None,
    reviewer: str,
    answer: str | None = None,
) -> dict[str, Any]:
    """Append the group's question, asked with its asker's groups, as a golden question answered by `doc_id`."""
    lead = group.items[0]
    if doc_groups is None:
        raise SourceError(
            f"{doc_id!r} is not a document you may read in the index; give the id of the document that should answer"
        )
    if lead.groups is None:
        raise SourceError("this question came from feedback without the asker's groups; accept another wording")
    if not lead.groups:
        raise SourceError("this question's asker is in no group, so no document can answer it; accept another wording")
    if not set(doc_groups) & set(lead.groups):
        raise SourceError(
            f"the asker cannot read {doc_id} (groups {list(doc_groups)}): a golden question "
            "must be answerable by its asker; re-group the document or pick another"
        )
    _refuse_repeat(files.golden, lead.question, lead.groups)
    record: dict[str, Any] = {"question": lead.question, "relevant": [doc_id], "groups": lead.groups}
    if answer:
        record["answer"] = answer
    record["provenance"] = {"from": "review", **asdict(Provenance.of(group, reviewer))}
    append_record(files.golden, record)
    _decide(files, group, "golden", reviewer, files.golden)
    return record


def _refuse_repeat(golden: Path, question: str, groups: Sequence[str]) -> None:
    wanted = (normalise_space(question).lower(), sorted(groups))
    for number, record in enumerate(read_records(golden), start=1):
        if (normalise_space(str(record.get("question", ""))).lower(), sorted(record.get("groups", []))) == wanted:
            raise SourceError(f"{golden}:{number} already asks this question with these groups")


@dataclass(frozen=True)
class TrainingRules:
    """What the tuning data check needs to judge one new item."""

    held_out: Callable[[str], str | None]  # where a question repeats an evaluation question, if it does
    near_duplicate: Callable[[str, Sequence[str]], int | None]  # the index of a near-duplicate question, if any
    allowed_groups: Sequence[str]

    @classmethod
    def for_repo(cls, repo: Path, allowed_groups: Sequence[str]) -> TrainingRules:
        """The rules `assistant tune check` applies, with this repository's held-out evaluation sets."""
        held_out = held_out_index(repo)

        def near(question: str, others: Sequence[str]) -> int | None:
            mine = words(question)
            return next((n for n, o in enumerate(others) if jaccard(mine, words(o)) >= NEAR_DUPLICATE), None)

        return cls(lambda question: eval_overlap(question, held_out), near, list(allowed_groups))


def accept_training(
    files: ReviewFiles,
    group: ReviewGroup,
    rules: TrainingRules,
    reviewer: str,
    *,
    doc_id: str | None,
    doc_groups: Sequence[str] | None,
    doc_text: str,
    answer: str = "",
    quotes: Sequence[str] = (),
) -> dict[str, Any]:
    """Append the group's question as a curated training item: answered from `doc_id` with `quotes`, or (no
    document) a question the documents do not answer."""
    question = group.question
    where = rules.held_out(question)
    if where is not None:
        raise SourceError(f"the question repeats the held-out evaluation question {where}; it may not be trained on")
    existing = read_records(files.training_items)
    twin = rules.near_duplicate(question, [str(r.get("question", "")) for r in existing])
    if twin is not None:
        raise SourceError(f"{files.training_items}:{twin + 1} already holds a near-duplicate of this question")
    record: dict[str, Any] = {"id": f"review-{group.id}", "question": question}
    if doc_id is None:
        record.update(kind="unanswerable")
    else:
        if doc_groups is None:
            raise SourceError(f"{doc_id!r} is not a document you may read in the index; give the one that answers")
        outside = sorted(set(doc_groups) - set(rules.allowed_groups))
        if outside:
            raise SourceError(
                f"{doc_id} is readable by {outside}, outside the training allow-list {list(rules.allowed_groups)}: "
                "its text may not go into an adapter that serves every user"
            )
        if not answer or not quotes:
            raise SourceError("an answerable training item needs --answer and at least one --quote")
        text = normalise_space(doc_text)
        for quote in quotes:
            if normalise_space(quote) not in text:
                raise SourceError(f"not verbatim in {doc_id}: {quote!r}; copy the sentence exactly")
        record.update(kind="answerable", doc_id=doc_id, answer=answer, quotes=list(quotes))
    record.update(wording="review", provenance={"from": "review", **asdict(Provenance.of(group, reviewer))})
    append_record(files.training_items, record)
    _decide(files, group, "training", reviewer, files.training_items)
    return record


def record_gap(files: ReviewFiles, group: ReviewGroup, reviewer: str, note: str | None = None) -> dict[str, Any]:
    """The corpus has no document for these questions: a task for the corpus owner (shown on the corpus page)."""
    record = {
        "question": group.question,
        "asked": len(group.items),
        "groups": sorted({g for i in group.items for g in i.groups or ()}),
        "note": note,
        # What its questions retrieved: the corpus page shows the gap only to owners who may read all of it.
        "documents": sorted(
            {
                (i.collection or "", str(hit["doc_id"]), tuple(hit.get("groups") or ()))
                for i in group.items
                for hit in i.retrieved
            }
        ),
        "provenance": {"from": "review", **asdict(Provenance.of(group, reviewer))},
    }
    append_record(files.corpus_gaps, record)
    _decide(files, group, "corpus gap", reviewer, files.corpus_gaps)
    return record


def dismiss(files: ReviewFiles, group: ReviewGroup, reviewer: str) -> None:
    _decide(files, group, "dismissed", reviewer, None)


def read_gaps(files: ReviewFiles) -> list[dict[str, Any]]:
    return list(reversed(read_records(files.corpus_gaps)))


def gaps_for(
    reviewer: Principal, files: ReviewFiles, documents: DocumentGroups, default_collection: str
) -> tuple[list[dict[str, Any]], int]:
    """(the corpus gaps `reviewer` may see, how many others are hidden): a gap is shown where the reviewer may
    read every document its questions retrieved and holds every group its askers held, as in the review queue;
    one recorded without its documents or its askers' groups is hidden from everyone (fail closed)."""
    shown: list[dict[str, Any]] = []
    hidden = 0
    for gap in read_gaps(files):
        retrieved, askers = gap.get("documents"), gap.get("groups")
        readable = isinstance(retrieved, list) and all(
            reviewer.may_read(documents.groups(collection or default_collection, doc_id, logged))
            for collection, doc_id, logged in retrieved
        )
        if readable and isinstance(askers, list) and reviewer.holds_all(askers):
            shown.append(gap)
        else:
            hidden += 1
    return shown, hidden


def dumps(queue: ReviewQueue) -> str:
    return json.dumps(queue.to_json(), indent=1)
