"""`assistant tune check FILE`: validate training JSONL before any training, reporting every problem by line.

Accepted shapes, one example a line: chat `{"messages": [{"role": "system"|"user"|"assistant", "content": ...}]}`
or `{"prompt": ..., "completion": ...}` (what `tune build-data` writes, with an optional `meta`). Checked:
invalid JSON, unknown shapes and roles, a missing or empty answer turn, examples longer than the recipe's
`max_length` after tokenisation (counted and reported; training skips them, never cuts them), a quote that is in no
block of its prompt (placeholders of a redaction aside: `tuning.scrub.verbatim_up_to_placeholders`), exact and near
duplicate questions, near duplicates landing in both splits, and any question that repeats or paraphrases an
evaluation question (the handbook golden and out-of-corpus sets, SciFact's test claims), lines that are not UTF-8,
and each line's `sources`: their groups in the index now must all be in the recipe's `data.allowed_groups`
(`tuning/provenance.py`), and what each line holds: personal data or secrets the recipe's scrub policy would act on,
and whether a current scan report vouches for the file (`tuning/scrub.py`, `add_scan_problems`).

Splits are deterministic: an example's split comes from a hash of its normalised question, so the same question
always lands in the same split, on every machine.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError
from assistant.house_format import parse_answer
from evals.held_out import eval_overlap, held_out_index, words
from evals.near_duplicates import NearDuplicates
from tuning.provenance import NOT_UTF8, LineRefused, SourcePolicy, numbered_lines, parse_record
from tuning.scrub import SECRET, VERBS, ScanReport, Scrub, current_report, verbatim_up_to_placeholders

ROLES = {"system", "user", "assistant"}


@dataclass(frozen=True)
class Problem:
    line: int
    code: str
    message: str


@dataclass
class CheckReport:
    examples: int = 0
    problems: list[Problem] = field(default_factory=list)
    splits: Counter[str] = field(default_factory=Counter)
    too_long: int = 0

    def add(self, line: int, code: str, message: str) -> None:
        self.problems.append(Problem(line, code, message))

    def summary(self) -> str:
        counts = Counter(p.code for p in self.problems)
        found = ", ".join(f"{n} {code}" for code, n in sorted(counts.items())) or "no problems"
        splits = ", ".join(f"{n} {name}" for name, n in sorted(self.splits.items()))
        return f"{self.examples} examples ({splits}): {found}"

    def to_json(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "splits": dict(self.splits),
            "too_long": self.too_long,
            "problems": [p.__dict__ for p in self.problems],
        }


def split_of(question: str, validation_share: float) -> str:
    digest = hashlib.sha256(" ".join(sorted(words(question))).encode("utf-8")).digest()
    return "validation" if int.from_bytes(digest[:4], "big") / 2**32 < validation_share else "train"


def check_file(
    path: Path, tokenizer_dir: str, max_length: int, validation_share: float, repo: Path, policy: SourcePolicy
) -> CheckReport:
    from transformers import AutoTokenizer

    raw = read_data_file(path)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    report = CheckReport()
    held_out = held_out_index(repo)
    seen_exact: dict[str, int] = {}
    questions: list[tuple[int, str, frozenset[str], str]] = []  # line, question, words, split
    for number, line in numbered_lines(raw):
        report.examples += 1
        parsed = _parse(line, number, report, policy)
        if parsed is None:
            continue
        prompt, answer, question = parsed
        length = len(tokenizer(prompt + answer)["input_ids"]) + 1
        if length > max_length:
            report.too_long += 1
            report.add(number, "too-long", f"{length} tokens > max_length {max_length}: training would skip it")
        key = hashlib.sha256((prompt + "\x00" + answer).encode("utf-8")).hexdigest()
        if key in seen_exact:
            report.add(number, "duplicate", f"the same example as line {seen_exact[key]}")
            continue
        seen_exact[key] = number
        split = split_of(question, validation_share)
        report.splits[split] += 1
        where = eval_overlap(question, held_out)
        if where is not None:
            report.add(number, "eval-overlap", f"the question repeats or paraphrases {where}")
        questions.append((number, question, words(question), split))
    _near_duplicates(questions, report)
    report.problems.sort(key=lambda p: p.line)
    return report


def read_data_file(path: Path) -> bytes:
    """The bytes of a training file; a missing or unreadable one is one line saying what to do."""
    if not path.is_file():
        raise ConfigError(f"{path} does not exist or is not a file; give a training JSONL (tune build-data writes one)")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read ({exc.strerror}); check its permissions") from None


def _near_duplicates(questions: list[tuple[int, str, frozenset[str], str]], report: CheckReport) -> None:
    """Each question against the earlier ones (MinHash LSH candidates, exact Jaccard: `evals.near_duplicates`)."""
    index = NearDuplicates()
    for line, question, mine, split in questions:
        for key in index.matches(mine):
            other_line, other, _, other_split = questions[key]
            if question == other:
                continue  # the same question in several examples (RAFT variants) is not a near duplicate
            if split != other_split:
                report.add(line, "split-overlap", f"near duplicate of line {other_line} in the {other_split} split")
            else:
                report.add(line, "near-duplicate", f"question close to line {other_line}'s")
            break
        index.add(mine)


def _parse(line: str | None, number: int, report: CheckReport, policy: SourcePolicy) -> tuple[str, str, str] | None:
    """(prompt text, answer text, question) of one line, or None after reporting why it is unusable; a line whose
    sources may not give text to training is reported and still checked for the rest."""
    if line is None:
        report.add(number, "not-utf8", NOT_UTF8)
        return None
    try:
        record = parse_record(line)
    except LineRefused as exc:
        report.add(number, exc.code, str(exc))
        return None
    try:
        policy.groups_of(record)
    except LineRefused as exc:
        report.add(number, exc.code, str(exc))
    if "messages" in record:
        return _parse_messages(record["messages"], number, report)
    if "prompt" in record or "completion" in record:
        return _parse_prompt_completion(record, number, report)
    report.add(number, "unknown-shape", "expected 'messages' (chat) or 'prompt' and 'completion'")
    return None


def _parse_prompt_completion(record: dict[str, Any], number: int, report: CheckReport) -> tuple[str, str, str] | None:
    prompt, completion = record.get("prompt"), record.get("completion")
    if not isinstance(prompt, str) or not prompt.strip():
        report.add(number, "missing-prompt", "'prompt' must be a non-empty string")
        return None
    if not isinstance(completion, str) or not completion.strip():
        report.add(number, "empty-answer", "'completion' (the answer) is missing or empty")
        return None
    meta = record.get("meta") or {}
    if not isinstance(meta, dict):
        report.add(number, "bad-meta", "'meta' must be a JSON object (or left out)")
        return None
    question = str(meta.get("question") or _question_of(prompt))
    for _, quote in parse_answer(completion).quotes:
        if not verbatim_up_to_placeholders(quote, prompt):
            report.add(number, "quote-not-shown", "a quote of the answer is in no block of the prompt")
    return prompt, completion, question


def _parse_messages(messages: Any, number: int, report: CheckReport) -> tuple[str, str, str] | None:
    if not isinstance(messages, list) or not messages:
        report.add(number, "no-messages", "'messages' must be a non-empty list of {role, content}")
        return None
    for turn in messages:
        role = turn.get("role") if isinstance(turn, dict) else None
        if role not in ROLES:
            report.add(number, "unknown-role", f"role {role!r}; use one of {', '.join(sorted(ROLES))}")
            return None
        if not isinstance(turn.get("content"), str):
            report.add(number, "bad-content", f"the {role} turn's 'content' must be a string")
            return None
    answers = [t for t in messages if t["role"] == "assistant"]
    if not answers:
        report.add(number, "missing-answer", "no assistant turn: nothing to learn from")
        return None
    if not answers[-1]["content"].strip():
        report.add(number, "empty-answer", "the last assistant turn is empty")
        return None
    users = [t["content"] for t in messages if t["role"] == "user"]
    if not users:
        report.add(number, "missing-question", "no user turn")
        return None
    prompt = "\n".join(t["content"] for t in messages[:-1])
    return prompt, answers[-1]["content"], _question_of(users[-1])


def _question_of(prompt: str) -> str:
    """The question of a rendered prompt (its last 'Question:' line), else the whole text."""
    lines = [line for line in prompt.splitlines() if line.startswith("Question:")]
    return lines[-1].removeprefix("Question:").strip() if lines else prompt.strip()


def add_scan_problems(report: CheckReport, scan: ScanReport, scrub: Scrub, path: Path) -> None:
    """What the scrub policy would still do to the file (a line each, naming the types, never the values), and
    whether a current scan report vouches for it (`tune train` needs one)."""
    pending = [line for line in scan.lines if line.outcome != "kept"]
    for line in pending:
        secret = any(scrub.scanners.types.get(kind) == SECRET for kind in line.found)
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(line.found.items()))
        report.add(
            line.line, "secret" if secret else "personal-data", f"{kinds}: the scrub policy would {VERBS[line.outcome]}"
        )
    if pending:
        report.add(0, "scan-report", f"apply the policy with `{scrub.fix(path)}`")
        return
    try:
        current_report(path, path.read_bytes(), scrub.scanners, scrub.policy, scrub.fix(path))
    except ConfigError as exc:
        report.add(0, "scan-report", str(exc))
