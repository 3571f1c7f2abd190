"""Production evidence on served and candidate adapters: what the quality page compares side by side and what
`tune promote --evidence` requires.

Two sources, both local files of the data directory (`assistant/question_log.py`, `assistant/feedback.py`,
`assistant/shadow.py`), so the figures hold without a Langfuse server:
- **canary**: the question log, per adapter that answered (each entry names it), with the thumbs given on
  those answers: refusal rate, format failures, unsupported quotes, the share labelled "Answer supported",
  thumbs-down rate and latency;
- **shadow**: each shadowed question scored twice, served and candidate, on the same blocks: paired rates.

Every rate carries its count and a Wilson 95% interval: a canary of 40 questions says little, and the page says so.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.feedback import read_feedback
from assistant.question_log import LoggedQuestion, QuestionLog
from assistant.shadow import read_shadow_log, read_skipped

Z95 = 1.959964
BASE = "base"  # the name of "no adapter" in these tables

# name -> (what it measures, higher is better)
RATES: dict[str, tuple[str, bool]] = {
    "format_valid": ("answers in the house format", True),
    "quotes_verbatim": ("quotes found verbatim in their source", True),
    "refusal_rate": ("questions refused (by the model or the gates)", False),
    "supported": ('answers labelled "Answer supported"', True),
    "thumbs_down": ("answers given a thumbs-down, of those given a thumb", False),
}


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion; (0, 1) for no observations."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Rate:
    successes: int
    n: int

    @property
    def value(self) -> float | None:
        return self.successes / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.successes, self.n)

    def shown(self) -> str:
        """'0.93 [0.81, 0.98] n=40', or '- n=0'."""
        if not self.n:
            return "- n=0"
        low, high = self.interval
        return f"{self.value:.2f} [{low:.2f}, {high:.2f}] n={self.n}"

    def to_json(self) -> dict[str, Any]:
        low, high = self.interval
        return {"value": self.value, "successes": self.successes, "n": self.n, "low": low, "high": high}


@dataclass(frozen=True)
class AdapterFigures:
    """One adapter's figures over a set of questions."""

    adapter: str
    questions: int
    rates: dict[str, Rate]
    latency_p50: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "adapter": self.adapter,
            "questions": self.questions,
            "rates": {k: r.to_json() for k, r in self.rates.items()},
            "latency_p50": self.latency_p50,
        }


def adapter_name(adapter: str | None) -> str:
    """An entry's adapter as the tables name it: the registry id (a path's last part), or "base"."""
    return adapter.rstrip("/").rsplit("/", 1)[-1] if adapter else BASE


def served_figures(data_dir: Path, since: str | None = None) -> list[AdapterFigures]:
    """Per adapter that answered users (the question log since `since`), its figures, most questions first."""
    entries = QuestionLog(data_dir).read(since)
    thumbs = {
        f.trace_id: f.helpful for f in read_feedback(data_dir) if f.trace_id and (since is None or f.created >= since)
    }
    by_adapter: dict[str, list[LoggedQuestion]] = {}
    for entry in entries:
        by_adapter.setdefault(adapter_name(entry.adapter), []).append(entry)
    figures = [_figures(name, group, thumbs) for name, group in by_adapter.items()]
    return sorted(figures, key=lambda f: (-f.questions, f.adapter))


def _figures(adapter: str, entries: Sequence[LoggedQuestion], thumbs: dict[str, bool]) -> AdapterFigures:
    written = [e for e in entries if e.outcome in ("answered", "refused-model")]  # the model wrote these
    answered = [e for e in entries if e.outcome == "answered"]
    given = [thumbs[e.trace_id] for e in entries if e.trace_id in thumbs]
    seconds = [e.seconds for e in entries if e.seconds is not None]
    rates = {
        "format_valid": Rate(sum(e.format_valid for e in written), len(written)),
        "quotes_verbatim": Rate(sum(e.quotes_verbatim for e in answered), sum(e.quotes for e in answered)),
        "refusal_rate": Rate(sum(e.refused for e in entries), len(entries)),
        "supported": Rate(sum(e.label == "supported" for e in answered), len(answered)),
        "thumbs_down": Rate(sum(not helpful for helpful in given), len(given)),
    }
    return AdapterFigures(adapter, len(entries), rates, statistics.median(seconds) if seconds else None)


@dataclass(frozen=True)
class ShadowFigures:
    """The shadowed questions of one candidate: its figures and the served adapter's on the same questions."""

    candidate: AdapterFigures
    served: AdapterFigures
    agreement: dict[str, Rate]
    skipped: dict[str, int]  # shadowed questions not answered, by reason: dropped, yielded, failed

    def skipped_line(self) -> str:
        """ "answered 12; not answered: 3 yielded to served answers, 1 dropped (queue full), 0 failed"."""
        s = self.skipped
        return (
            f"answered {self.candidate.questions}; not answered: {s['yielded']} yielded to served answers, "
            f"{s['dropped']} dropped (queue full), {s['failed']} failed"
        )


def shadow_figures(data_dir: Path, candidate: str, since: str | None = None) -> ShadowFigures:
    records = [
        r
        for r in read_shadow_log(data_dir)
        if adapter_name(r.shadow_adapter) == candidate and (since is None or r.created >= since)
    ]
    served_name = adapter_name(records[-1].served_adapter) if records else BASE
    agreement = {
        name: Rate(sum(r.agreement[name] for r in records), len(records))
        for name in ("same_refusal", "same_cited_docs", "same_label")
    }
    return ShadowFigures(
        _scored(candidate, [r.shadow for r in records]),
        _scored(served_name, [r.served for r in records]),
        agreement,
        read_skipped(data_dir, candidate, since),
    )


def _scored(adapter: str, scores: Sequence[dict[str, Any]]) -> AdapterFigures:
    """Figures from shadow scores (`assistant.shadow.scores`): no thumbs exist for an answer nobody saw."""
    answered = [s for s in scores if not s["refused"]]
    quotes = sum(s["quotes"] for s in answered)
    verbatim = round(sum((s["quotes_verbatim"] or 0) * s["quotes"] for s in answered))
    rates = {
        "format_valid": Rate(sum(bool(s["format_valid"]) for s in scores), len(scores)),
        "quotes_verbatim": Rate(verbatim, quotes),
        "refusal_rate": Rate(sum(bool(s["refused"]) for s in scores), len(scores)),
        "supported": Rate(sum(s["label"] == "supported" for s in answered), len(answered)),
        "thumbs_down": Rate(0, 0),
    }
    seconds = [float(s["seconds"]) for s in scores]
    return AdapterFigures(adapter, len(scores), rates, statistics.median(seconds) if seconds else None)


@dataclass(frozen=True)
class Evidence:
    """Whether a candidate's rollout evidence allows its promotion: enough questions, no regression beyond the
    margins against the adapter it would replace."""

    candidate: AdapterFigures
    promoted: AdapterFigures
    source: str  # "canary", "shadow" or "canary+shadow"
    failures: list[str]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "candidate": self.candidate.to_json(),
            "promoted": self.promoted.to_json(),
            "failures": self.failures,
        }


def promotion_evidence(
    data_dir: Path,
    candidate: str,
    promoted: str,
    since: str,
    *,
    min_questions: int,
    margins: dict[str, float],
) -> Evidence:
    """The candidate's evidence since its rollout began: its canary answers against the promoted adapter's in the
    same period, else its shadow answers against the served ones on the same questions."""
    served = {f.adapter: f for f in served_figures(data_dir, since)}
    if candidate in served:
        mine, theirs, source = served[candidate], served.get(promoted), "canary"
        theirs = theirs or AdapterFigures(promoted, 0, {k: Rate(0, 0) for k in RATES}, None)
    else:
        shadow = shadow_figures(data_dir, candidate, since)
        mine, theirs, source = shadow.candidate, shadow.served, "shadow"
    failures = []
    if theirs.questions == 0 and min_questions > 0:
        failures.append(
            f"{promoted} answered no {source} question since {since}: nothing to compare the candidate with"
        )
    if mine.questions < min_questions:
        failures.append(
            f"{candidate} has {mine.questions} {source} questions since {since}; promotion needs {min_questions}"
        )
    for name, (what, higher_is_better) in RATES.items():
        a, b = mine.rates[name].value, theirs.rates[name].value
        margin = margins.get(name)
        if a is None or b is None or margin is None:
            continue
        worse = b - a if higher_is_better else a - b
        if worse > margin:
            failures.append(f"{name} ({what}) {a:.3f} against {b:.3f} for {promoted}: worse by more than {margin}")
    return Evidence(mine, theirs, source, failures)
