"""Which decider should refuse: the recall gate, the evidence scorer, both, or neither? Replays one answers run.

Run the answers evaluation once with neither deciding (every question reaches the model; each sample keeps the
gate's evidence and the scorer's best sentence score), then this script applies each decider to the saved samples:
a question is refused when the decider refuses it or the model did. Generation does not depend on the deciders
(the scorer orders the blocks either way), so the replay gives the figures a run under each decider would give,
except that a follow-up whose earlier question a decider refuses would be asked without that exchange.

    ASSISTANT_RECALL_GATE__MIN_EVIDENCE=0 ASSISTANT_EVIDENCE__REFUSE=false \\
        assistant eval answers [--answerable A --unanswerable U --collection C] --json run.json
    python -m benchmarks.answerability run.json [--gate 0.65] [--evidence 0.5]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from assistant.settings import load_settings


def decide(samples: list[dict[str, Any]], gate: float | None, evidence: float | None) -> dict[str, float]:
    answerable = [s for s in samples if not s["should_refuse"]]
    unanswerable = [s for s in samples if s["should_refuse"]]

    def refused(s: dict[str, Any]) -> bool:
        by_gate = gate is not None and (s["recall_evidence"] or 0.0) < gate
        by_evidence = evidence is not None and (s["evidence_score"] or 0.0) < evidence
        return bool(s["refused"] or by_gate or by_evidence)

    def share(part: int, whole: int) -> float:
        return round(part / whole, 3) if whole else 0.0

    answered = [s for s in answerable if not refused(s)]
    wrong = [s for s in answered if not s["correct"]]
    return {
        "correct": share(sum(bool(s["correct"]) for s in answered), len(answerable)),
        "wrong": share(len(wrong), len(answerable)),
        "refused": share(len(answerable) - len(answered), len(answerable)),
        "correct_refusals": share(sum(refused(s) for s in unanswerable), len(unanswerable)),
        "wrong_labelled_supported": share(sum(s["label"] == "supported" for s in wrong), len(answerable)),
        "token_f1": round(sum(s["token_f1"] or 0.0 for s in answered) / len(answerable), 3) if answerable else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="answers runs (--json) made with neither deciding")
    settings = load_settings()
    parser.add_argument("--gate", type=float, default=settings.recall_gate.min_evidence)
    parser.add_argument("--evidence", type=float, default=settings.evidence.min_score)
    args = parser.parse_args()
    deciders = {"neither": (None, None), "recall gate": (args.gate, None), "evidence scorer": (None, args.evidence)}
    deciders["both"] = (args.gate, args.evidence)
    for path in args.runs:
        samples = json.loads(path.read_text(encoding="utf-8"))["samples"]
        if all(s.get("evidence_score") is None for s in samples):  # (one with nothing retrieved has none: 0)
            raise SystemExit(f"{path}: no sample has an evidence_score; run the evaluation with a scorer")
        print(
            f"{path.name}: {sum(not s['should_refuse'] for s in samples)} answerable, "
            f"{sum(s['should_refuse'] for s in samples)} to refuse (gate {args.gate}, evidence {args.evidence})"
        )
        print(f"{'decider':16} correct  wrong  refused  correct_refusals  wrong_labelled_supported  token_f1")
        for name, (gate, evidence) in deciders.items():
            f = decide(samples, gate, evidence)
            print(
                f"{name:16} {f['correct']:7.3f} {f['wrong']:6.3f} {f['refused']:8.3f} {f['correct_refusals']:17.3f} "
                f"{f['wrong_labelled_supported']:25.3f} {f['token_f1']:9.3f}"
            )


if __name__ == "__main__":
    main()
