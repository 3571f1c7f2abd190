"""Quality (assistant engineers): retrieval nDCG@10 / recall over the saved eval runs, the latest run question by
question, the access-leak probe's last result, answer-quality runs, the adapters and which one serves, the review queue
(refusals, low-evidence answers and thumbs-down of the week, grouped; accept as golden, corpus gap or dismiss), and
a link to Langfuse when tracing is configured.

Questions, titles and document ids of other people's questions and of saved runs are shown only where the signed-in
reviewer may read every document they name (and, in the review queue, holds every group the asker held), else
redacted (`evals.redaction`); askers appear as pseudonyms, without their groups. Such text is shown as plain text:
in dataframes and `st.text`, and escaped (`ui.untrusted`) in labels and alerts, which render Markdown."""

from __future__ import annotations

from typing import Any

import streamlit as st

from assistant.adapters import promoted_id
from assistant.errors import AssistantError
from evals import review
from evals.redaction import DocumentGroups
from evals.saved_runs import read_saved_runs, redact_runs
from tuning.registry import list_adapters
from ui import untrusted
from ui.guard import require
from ui.roles import Page
from ui.rollout_view import show_rollout
from ui.superseded_view import show_superseded

RETRIEVAL_METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
ANSWER_METRICS = (  # the answer line alone first: what a user reads
    "line_correct",
    "line_wrong",
    "facts_in_shown",
    "facts_in_top1",
    "answered",
    "correct_refusals",
    "format_valid",
    "cited",
    "citation_precision",
    "quotes_verbatim",
    "token_f1",
)


def metric_rows(runs: list[dict[str, Any]], metrics: tuple[str, ...], label: str) -> list[dict[str, Any]]:
    return [
        {
            "run": run["created"],
            label: run.get(label) or "-",
            **{m: round(run["aggregate"][m], 4) for m in metrics if m in run["aggregate"]},
        }
        for run in runs
    ]


def reasons_line(reasons: dict[str, int]) -> str:
    return ", ".join(f"{reason} x{count}" for reason, count in reasons.items())


def show_review_group(group: review.ReviewGroup) -> None:
    """One group: its questions and what was retrieved (metadata only, as in a trace), and the decisions."""
    files = review.files_of(components.settings)
    with st.expander(
        untrusted.label(f"{group.question[:120]} ({len(group.items)} asked; {reasons_line(group.reasons)})")
    ):
        st.dataframe(
            [
                {
                    "asked": i.created,
                    "asker": i.user_id,  # a pseudonym; their groups would help tell who it is
                    "question": i.question,
                    "comment": i.comment or "",
                }
                for i in group.items
            ],
            hide_index=True,
        )
        documents = [d["doc_id"] for d in group.documents]
        st.text("Retrieved: " + (", ".join(documents) or "nothing the asker may read"))
        golden_doc = st.selectbox("Document that should answer it", documents, key=f"doc-{group.id}")
        golden, gap, dismiss = st.columns(3)
        try:
            if golden.button("Accept as golden question", key=f"golden-{group.id}", disabled=not golden_doc):
                groups, _ = review.indexed_document(components, None, str(golden_doc), principal)
                review.accept_golden(files, group, str(golden_doc), groups, principal.user_id)
                st.rerun()
            if gap.button("Corpus gap", key=f"gap-{group.id}"):
                review.record_gap(files, group, principal.user_id)
                st.rerun()
            if dismiss.button("Dismiss", key=f"dismiss-{group.id}"):
                review.dismiss(files, group, principal.user_id)
                st.rerun()
        except AssistantError as exc:
            st.error(untrusted.label(str(exc)))


components, principal = require(Page.QUALITY)
settings = components.settings
documents = DocumentGroups(settings)
runs = redact_runs(read_saved_runs(settings.eval_runs_dir), principal, documents, components.collection(None))
st.title("Quality")
langfuse = settings.ui.langfuse_url or settings.tracing.base_url
if langfuse:
    st.link_button("Open Langfuse (traces, scores, datasets)", langfuse)
if runs.unreadable:
    st.warning("Unreadable run files: " + ", ".join(runs.unreadable))

st.header("Retrieval")
if runs.retrieval:
    datasets = sorted({str(r["dataset"]) for r in runs.retrieval})
    dataset = st.selectbox("Dataset", datasets, index=len(datasets) - 1)
    chosen = [r for r in runs.retrieval if r["dataset"] == dataset]
    rows = metric_rows(chosen, RETRIEVAL_METRICS, "mode")
    st.line_chart(rows, x="run", y=[m for m in RETRIEVAL_METRICS if m in rows[-1]])
    latest = chosen[-1]
    when = untrusted.label(f"{latest['created']}, {latest['mode']}")  # a saved run's fields: text, never markdown
    st.subheader(f"Latest run, question by question ({when})")
    st.dataframe(
        [
            {
                "question": q["question"],
                **{m: q["metrics"].get(m) for m in ("ndcg@10", "recall@10")},
                "relevant": ", ".join(q["relevant"]),
                "top": ", ".join(q["top"][:3]),
                "redacted": q.get("redacted", ""),
            }
            for q in latest["queries"]
        ],
        hide_index=True,
    )
else:
    st.caption("No retrieval runs yet: `assistant eval retrieval --dataset samples/handbook-golden.jsonl`.")

st.header("Access control")
if runs.leaks:
    last = runs.leaks[-1]
    leaks = last["leaks"]
    probe = f"{last['probes']} probes by {last['users']} users on {last['collection']} ({last['created']})"
    summary = untrusted.label(probe)  # a saved run's fields: text, never markdown
    if leaks:
        st.error(f"{len(leaks)} leaks in the last probe: {summary}")
        st.dataframe(leaks, hide_index=True)
    else:
        st.success(f"No leaks: {summary}")
else:
    st.caption("No access-leak probe yet: `assistant eval leaks`.")

st.header("Answers")
if runs.answers:
    st.dataframe(metric_rows(runs.answers, ANSWER_METRICS, "adapter"), hide_index=True)
else:
    st.caption("No answer runs yet: `assistant eval answers`.")

st.header("Adapters")
serving = promoted_id(settings)
adapters = list_adapters(settings)
served = components.adapter
st.caption("Serving: " + (served.id if served is not None else "the base model"))
if adapters:
    st.dataframe(
        [
            {
                "promoted": "yes" if a.id == serving else "",
                "id": a.id,
                "data groups": ", ".join(a.data_groups),
                **{m: round(v, 3) for m, v in a.metrics.get("handbook", {}).items() if m in ANSWER_METRICS},
            }
            for a in adapters
        ],
        hide_index=True,
    )
else:
    st.caption("No adapters trained here; the shipped adapter serves (`assistant tune list`).")

show_superseded(components.settings, principal)

st.header("Rollout")
show_rollout(components, principal)

st.header("Review queue")
queue = review.open_queue(components, days=7, reviewer=principal)
if queue.groups or queue.redacted:
    st.caption(
        f"{len(queue.groups) + len(queue.redacted)} groups from the last 7 days; askers are pseudonymous; training "
        "items go through `assistant review train` (the tuning data rules need a reference answer and verbatim quotes)."
    )
    for group in queue.groups:
        show_review_group(group)
    if queue.redacted:
        st.subheader("Redacted: outside your groups")
        st.caption(
            "Hand a group's id to someone who may read its documents and holds its askers' groups; they see it in "
            "full and decide."
        )
        st.dataframe(
            [{"id": r.id, "asked": r.asked, "why": reasons_line(r.reasons), "redacted": r.why} for r in queue.redacted],
            hide_index=True,
        )
else:
    st.caption("Nothing to review: no refusals, low-evidence answers or thumbs-down in the last 7 days.")
