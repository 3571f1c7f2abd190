"""(question, sentence, label) pairs for the evidence scorer (`assistant/evidence.py`, trained by
`tuning/evidence_train.py`).

- Positives (label 1): each answerable curated item's `quotes` (the supporting sentences, verbatim in its
  document), and for SciFact *train* claims every rationale sentence of every cited abstract (the test split is
  refused by `tuning.items.scifact_items`).
- Hard negatives (label 0): the other sentences of the chunk(s) of the item's document that hold its quotes, and
  the sentences of the chunks the real retriever returns for the question, as a principal of the recipe's allowed
  groups: the sentences the runtime shows beside the answer. A sentence is a quote candidate of the decoding
  grammar (`assistant.evidence.block_sentences`); one that overlaps a positive (holds it, lies inside it, or
  shares nearly all its words) is never a negative. At most `data.max_negatives` per question, a seeded sample:
  half from the item's own chunks, the rest from the retrieved ones. Unanswerable items give only negatives.
- Access control as in `tuning/build_data.py`: only documents whose groups are all in `data.allowed_groups` give
  text; an item whose document is outside them is left out, a retrieved chunk outside them is skipped and
  counted. Every pair names its document and that document's groups (the scorer's record takes its data groups
  from the pairs it trained on).
- Held out: an item whose question repeats or paraphrases an evaluation question (`evals.held_out`: the handbook
  golden and out-of-corpus sets, SciFact's test claims, plus `data.held_out_extra`, e.g. the pip sets) is left out
  and reported, as is a near duplicate of a question already kept.
- Answer pairs (`data.answer_pairs`, curated items of a corpus other than SciFact): the same scorer also judges
  whether an *answer line* answers its question (`assistant.answer_support`'s verifier). Positive: the item's
  reference answer. Hard negatives: the reference answers of other items of the same document that share no quote
  with it (true statements of the right document that answer something else: the 270M model's usual mistake), and
  the parts of the item's own quotes, split at `:`, `;` and sentence ends, that share no content word with its
  reference answer ("We recommend a passphrase of four or more random words" for "Minimum length: 14 characters.
  We recommend a passphrase ..." asked the minimum length). Their `kind` is "answer".
- Split: all pairs of one question land on one side, by a hash of the question's words (`tuning.check.split_of`,
  the adapter's rule).

Retraining from the review queue: `assistant review train` appends accepted items to `review.training_items`
(`tuning/data/handbook-items.jsonl`, `evals/review.py`), the file the recipe's handbook source reads, so the next
`python -m tuning.evidence_train` trains on them; nothing else is needed.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.access import Principal
from assistant.components import Components
from assistant.errors import SourceError
from assistant.evidence import block_sentences
from assistant.house_format import fold, normalise_space
from assistant.progress import NO_PROGRESS, Progress
from assistant.store import StoredChunk
from evals.held_out import NEAR_DUPLICATE, held_out_index, jaccard, training_exclusion, words
from evals.near_duplicates import NearDuplicates
from ingestion.run import run_ingest
from tuning.build_data import SCIFACT_COLLECTION, chunks_by_document
from tuning.check import split_of
from tuning.items import Item, load_items, scifact_items

if TYPE_CHECKING:
    from tuning.evidence_train import EvidenceDataRecipe

TRAIN = "train.jsonl"
VALIDATION = "validation.jsonl"
SENTENCE = "sentence"
ANSWER = "answer"
HeldOut = list[tuple[str, frozenset[str]]]  # (where, question words), as `evals.held_out.held_out_index`


@dataclass(frozen=True)
class Pair:
    question: str
    sentence: str
    label: int  # 1: the sentence answers (supports) the question; 0: it does not
    item: str  # the item's id
    source: str  # the collection the item's corpus is ingested into
    doc_id: str  # the document the sentence comes from
    groups: tuple[str, ...]  # that document's groups
    kind: str = SENTENCE  # SENTENCE: a sentence of a block; ANSWER: an answer line

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "sentence": self.sentence,
            "label": self.label,
            "item": self.item,
            "source": self.source,
            "doc_id": self.doc_id,
            "groups": list(self.groups),
            "kind": self.kind,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pair:
        label = int(data["label"])
        if label not in (0, 1):
            raise ValueError(f"label must be 0 or 1, not {label}")
        return cls(
            str(data["question"]),
            str(data["sentence"]),
            label,
            str(data["item"]),
            str(data["source"]),
            str(data["doc_id"]),
            tuple(str(g) for g in data["groups"]),
            str(data.get("kind", SENTENCE)),
        )


@dataclass(frozen=True)
class Job:
    """Items over one ingested collection; `rationales`: more positives per item id, as (doc id, sentence)."""

    collection: str
    items: list[Item]
    rationales: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)


@dataclass
class PairReport:
    pairs: list[Pair] = field(default_factory=list)
    questions: int = 0  # items that gave pairs
    excluded: Counter[str] = field(default_factory=Counter)  # reason -> items
    excluded_items: list[str] = field(default_factory=list)  # "id: reason (detail)"
    excluded_chunks: int = 0  # retrieved chunks of documents outside the allowed groups
    held_out_sets: list[str] = field(default_factory=list)  # the evaluation sets checked against

    def exclude(self, item: Item, reason: str, detail: str = "") -> None:
        self.excluded[reason] += 1
        self.excluded_items.append(f"{item.id}: {reason}" + (f" ({detail})" if detail else ""))

    @property
    def data_groups(self) -> set[str]:
        return {group for pair in self.pairs for group in pair.groups}


def build_pairs(
    components: Components, data: EvidenceDataRecipe, repo: Path, progress: Progress = NO_PROGRESS
) -> PairReport:
    """Ingest the recipe's corpora (a sync: unchanged documents are not embedded again) and build the pairs."""
    jobs = ingest_jobs(components, data, repo, progress)
    held_out, sets = held_out_questions(repo, data.held_out_extra)
    report = collect_pairs(components, jobs, data, held_out, progress)
    report.held_out_sets = sets
    return report


def ingest_jobs(
    components: Components, data: EvidenceDataRecipe, repo: Path, progress: Progress = NO_PROGRESS
) -> list[Job]:
    jobs = []
    for source in data.sources:
        run_ingest(components, repo / source.corpus, source.collection, progress=progress)
        jobs.append(Job(source.collection, load_items(repo / source.items, source.collection)))
    if data.scifact:
        root = (repo / data.scifact).resolve()
        run_ingest(components, root / "corpus.jsonl", SCIFACT_COLLECTION, ["everyone"], progress=progress)
        claims = scifact_items(root, "train")  # refuses the test split
        if 0 < data.scifact_claims < len(claims):
            claims = random.Random(data.seed).sample(claims, data.scifact_claims)
        jobs.append(Job(SCIFACT_COLLECTION, claims, scifact_rationales(root, claims)))
    return jobs


def scifact_rationales(root: Path, claims: Sequence[Item]) -> dict[str, tuple[tuple[str, str], ...]]:
    """Every rationale sentence of every cited abstract of each claim (`scifact_items` keeps only the first
    evidence set as the item's quotes): all of them are positives, so none is ever taken as a negative."""
    wanted = {item.id.removeprefix("scifact-") for item in claims if item.source == "scifact"}
    sentences: dict[str, list[str]] = {}
    with (root / "corpus_sentences.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            sentences[str(record["_id"])] = [str(s) for s in record["sentences"]]
    found: dict[str, tuple[tuple[str, str], ...]] = {}
    with (root / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            claim = json.loads(line)
            if str(claim["_id"]) not in wanted:
                continue
            evidence = claim.get("metadata") or {}
            found[f"scifact-{claim['_id']}"] = tuple(
                (str(doc_id), sentences[str(doc_id)][i].strip())
                for doc_id, rationales in sorted(evidence.items())
                if str(doc_id) in sentences
                for rationale in rationales
                for i in rationale["sentences"]
            )
    return found


def held_out_questions(repo: Path, extra: Sequence[str]) -> tuple[HeldOut, list[str]]:
    """The evaluation questions no training pair may repeat or paraphrase: `evals.held_out`'s sets and the `extra`
    JSONL files (relative to `repo`; each line has a "question") that exist. Also returns the extra sets read."""
    held_out = held_out_index(repo)
    read = []
    for name in extra:
        path = repo / name
        if not path.is_file():
            continue
        read.append(name)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    question = str(json.loads(line)["question"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise SourceError(f"{path}:{number}: not an evaluation question ({exc})") from exc
                held_out.append((f"{name}:{number}", words(question)))
    return held_out, read


def collect_pairs(
    components: Components,
    jobs: Sequence[Job],
    data: EvidenceDataRecipe,
    held_out: HeldOut,
    progress: Progress = NO_PROGRESS,
) -> PairReport:
    """The pairs of every job's items, over collections already ingested."""
    report = PairReport()
    allowed = frozenset(data.allowed_groups)
    principal = Principal.of("evidence-data", sorted(allowed))
    kept_questions = NearDuplicates()
    for job in jobs:
        chunks_of = chunks_by_document(components, job.collection)
        retriever = components.retriever(job.collection)
        by_document: dict[str | None, list[Item]] = {}  # answer-pair negatives: never a held-out item's answer
        for item in job.items:
            if training_exclusion(item.question, held_out) is None:
                by_document.setdefault(item.doc_id, []).append(item)
        task = f"evidence pairs ({job.collection})"
        progress.start(task, len(job.items))
        for item in job.items:
            progress.advance(task)
            excluded = training_exclusion(item.question, held_out, kept_questions)
            if excluded is not None:
                report.exclude(item, *excluded)
                continue
            retrieved = retriever.search(principal, item.question, top_k=data.retrieved).chunks
            pairs = _item_pairs(item, job, retrieved, chunks_of, allowed, data, report)
            if pairs and data.answer_pairs and job.collection != SCIFACT_COLLECTION and item.answerable:
                pairs += answer_pairs(item, by_document.get(item.doc_id, []), pairs[0], data)
            if pairs:
                kept_questions.add(words(item.question))
                report.pairs += pairs
                report.questions += 1
        progress.finish(task)
    return report


def _item_pairs(
    item: Item,
    job: Job,
    retrieved: Sequence[Any],
    chunks_of: dict[str, list[StoredChunk]],
    allowed: frozenset[str],
    data: EvidenceDataRecipe,
    report: PairReport,
) -> list[Pair]:
    positives: list[tuple[str, str]] = []  # (doc id, sentence)
    if item.answerable:
        assert item.doc_id is not None  # tuning.items guarantees it for answerable items
        positives = [(item.doc_id, normalise_space(q)) for q in item.quotes]
        positives += [(doc, normalise_space(s)) for doc, s in job.rationales.get(item.id, ())]
        positives = list(dict.fromkeys(positives))
    own: list[StoredChunk] = []
    for doc_id in dict.fromkeys(doc for doc, _ in positives):
        chunks = chunks_of.get(doc_id)
        if not chunks:
            report.exclude(item, "its document is not in the index", doc_id)
            return []
        if not set(chunks[0].groups) <= allowed:
            report.exclude(item, "its document is readable beyond the allowed groups", doc_id)
            return []
        mine = [fold(s) for doc, s in positives if doc == doc_id]
        holding = [c for c in chunks if any(q in fold(c.text) for q in mine)]
        whole = fold(" ".join(c.text for c in chunks))
        if not all(q in whole for q in mine):
            report.exclude(item, "a quote is not in its document (re-ingest, or fix the item)", doc_id)
            return []
        own += holding or chunks  # a quote cut by a chunk boundary: the whole document's chunks
    folded_positives = [fold(s) for _, s in positives]
    positive_words = [words(s) for _, s in positives]

    def is_negative(sentence: str) -> bool:
        folded = fold(sentence)
        if any(folded in p or p in folded for p in folded_positives):
            return False
        mine = words(sentence)
        return all(jaccard(mine, theirs) < NEAR_DUPLICATE for theirs in positive_words)

    own_ids = {c.id for c in own}
    shown = []
    for chunk in retrieved:
        if chunk.chunk_id in own_ids:
            continue
        if not set(chunk.groups) <= allowed:
            report.excluded_chunks += 1
            continue
        shown.append(chunk)
    seen: set[str] = set()
    own_pool = _candidates(((c.doc_id, c.groups, c.text) for c in own), is_negative, seen)
    shown_pool = _candidates(((c.doc_id, tuple(c.groups), c.text) for c in shown), is_negative, seen)
    rng = random.Random(f"{data.seed}:{item.id}")
    cap = max(0, data.max_negatives)
    take_own = min(len(own_pool), cap // 2 if shown_pool else cap)
    chosen = rng.sample(own_pool, take_own)
    chosen += rng.sample(shown_pool, min(len(shown_pool), cap - len(chosen)))
    rest = [c for c in own_pool if c not in chosen]
    chosen += rng.sample(rest, min(len(rest), cap - len(chosen)))
    groups_of = {doc: tuple(chunks_of[doc][0].groups) for doc, _ in positives}
    pairs = [Pair(item.question, s, 1, item.id, job.collection, doc, groups_of[doc]) for doc, s in positives]
    pairs += [Pair(item.question, s, 0, item.id, job.collection, doc, groups) for doc, groups, s in chosen]
    if not pairs:
        report.exclude(item, "no sentence to pair it with (nothing retrieved in the allowed groups)")
    return pairs


_SPLIT_PARTS = re.compile(r"[:;]\s+|(?<=[.!?])\s+")
_MIN_PART_WORDS = 4


def answer_pairs(item: Item, same_document: Sequence[Item], positive: Pair, data: EvidenceDataRecipe) -> list[Pair]:
    """(question, answer line) pairs of an answerable item: its reference answer (1); other items' answers of its
    document that share no quote with it, and the parts of its quotes that share no content word with its answer
    (0). At most `data.max_negatives` negatives, a seeded sample. `positive`: one of the item's sentence pairs,
    whose collection and document groups the answer pairs take."""
    assert item.doc_id is not None
    own_quotes = {fold(q) for q in item.quotes}
    answer_words = content_words(item.answer)
    others = [
        other.answer
        for other in same_document
        if other.id != item.id and other.answerable and other.answer and not own_quotes & set(map(fold, other.quotes))
    ]
    parts = [
        part.strip(" -*")
        for quote in item.quotes
        for part in _SPLIT_PARTS.split(normalise_space(quote))
        if len(part.split()) >= _MIN_PART_WORDS and not content_words(part) & answer_words
    ]
    negatives = list(dict.fromkeys(n for n in [*parts, *others] if fold(n) != fold(item.answer)))
    rng = random.Random(f"{data.seed}:{item.id}:answers")
    chosen = rng.sample(negatives, min(len(negatives), max(0, data.max_negatives)))
    source, groups = positive.source, positive.groups
    pairs = [Pair(item.question, item.answer, 1, item.id, source, item.doc_id, groups, ANSWER)]
    pairs += [Pair(item.question, n, 0, item.id, source, item.doc_id, groups, ANSWER) for n in chosen]
    return pairs


_STOP_WORDS = frozenset(
    re.findall(
        r"\w+",
        "a an and are as at be by can do does for from has have how i if in is it its may must no not of on or our "
        "the their them they this to up was we what when where which who will with you your yes",
    )
)


def content_words(text: str) -> set[str]:
    """The words of `text` that carry meaning (stop words aside), as `evals.held_out.words` splits them."""
    return set(words(text)) - _STOP_WORDS


def _candidates(
    chunks: Iterable[tuple[str, tuple[str, ...], str]], is_negative: Callable[[str], bool], seen: set[str]
) -> list[tuple[str, tuple[str, ...], str]]:
    """(doc id, groups, sentence) of every quotable sentence of `chunks` that may be a negative, once each."""
    found = []
    for doc_id, groups, text in chunks:
        for sentence in block_sentences(text):
            key = fold(sentence)
            if key not in seen and is_negative(sentence):
                seen.add(key)
                found.append((doc_id, groups, sentence))
    return found


def split_pairs(pairs: Sequence[Pair], validation_share: float) -> tuple[list[Pair], list[Pair]]:
    """(train, validation): every pair of one question on the side the hash of its words picks."""
    train: list[Pair] = []
    validation: list[Pair] = []
    for pair in pairs:
        (validation if split_of(pair.question, validation_share) == "validation" else train).append(pair)
    return train, validation


def write_pairs(pairs: Sequence[Pair], path: Path) -> str:
    """Write JSONL; return the sha256 of the bytes written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = "".join(json.dumps(p.to_json(), ensure_ascii=False) + "\n" for p in pairs).encode("utf-8")
    path.write_bytes(raw)
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class PairFile:
    path: Path
    pairs: list[Pair]
    sha256: str  # of the bytes read: what the scorer's record names


def read_pairs(path: Path) -> PairFile:
    """A pairs file as training reads it, each problem naming the file and line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SourceError(f"{path} does not exist: build the pairs first (python -m tuning.evidence_train)") from None
    pairs = []
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if line.strip():
            try:
                pairs.append(Pair.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                raise SourceError(f"{path}:{number}: not an evidence pair ({exc})") from exc
    return PairFile(path, pairs, hashlib.sha256(raw).hexdigest())
