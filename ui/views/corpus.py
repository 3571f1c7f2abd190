"""Corpus (corpus owners): the indexed documents with their groups and versions, a dry-run diff before a
re-ingest, the re-ingest itself with its progress (chat keeps answering), its failures, what the latest sync did
to the golden questions (impact report), the corpus gaps reviewers found, and past runs. Access rules that match
no document and documents holding text aimed at the assistant are called out. Document ids, titles,
paths and error messages come from the corpus: shown in tables (plain text) or escaped (`ui.untrusted`)."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from evals.impact import latest_report
from evals.redaction import DocumentGroups
from evals.review import files_of, gaps_for
from ingestion.catalog import read_catalog
from ingestion.history import read_runs
from ingestion.run import run_ingest
from ingestion.summary import SyncSummary
from ui import runtime
from ui.guard import require
from ui.ingest_job import IngestJob
from ui.roles import Page
from ui.superseded_view import show_superseded
from ui.untrusted import escape_markdown, label

DRY_RUN_KEY = "corpus_dry_run"
CHANGE_KINDS = ("added", "changed", "deleted", "regrouped")
IMPACT_COLUMNS = {
    "question": st.column_config.TextColumn(width="large"),
    "touched": st.column_config.TextColumn(width="medium"),
    "recall before": st.column_config.NumberColumn(width="small", format="%.2f"),
    "recall after": st.column_config.NumberColumn(width="small", format="%.2f"),
    "moved to": st.column_config.TextColumn(width="small"),
    "asker cannot read": st.column_config.TextColumn(width="small"),
}


def show_changes(summary: SyncSummary) -> None:
    counts = {kind: len(getattr(summary, kind)) for kind in CHANGE_KINDS}
    st.markdown(" · ".join(f"**{n}** {kind}" for kind, n in counts.items()) + f" · {len(summary.unchanged)} unchanged")
    for kind in CHANGE_KINDS:
        if getattr(summary, kind):
            st.markdown(f"*{kind}*: " + escape_markdown(", ".join(getattr(summary, kind))))
    if summary.uncovered:
        st.warning("No access rule covers these, so nobody can read them: " + label(", ".join(summary.uncovered)))
    for message in summary.unmatched_rules + summary.rule_warnings:
        st.warning(f"{label(message)}.")
    if summary.widened:
        verb = "would gain" if summary.dry_run or summary.refused else "gained"
        st.warning(
            f"{len(summary.widened)} document(s) {verb} readers; check the rules named:\n\n"
            + "\n".join(f"- {label(message)}" for message in summary.widened)
        )
    if summary.flagged:
        st.warning("Text aimed at the assistant (indexed; check these documents): " + label("; ".join(summary.flagged)))
    if summary.failed:
        st.error(f"{len(summary.failed)} document(s) failed; the index keeps their previous version")
        st.dataframe([{"document": f.path, "reason": f.error} for f in summary.failed], hide_index=True)


@st.fragment(run_every=1.0)
def show_running_job(job: IngestJob) -> None:
    """Refreshed every second while the re-ingest runs; one full rerun when it ends (then nothing polls)."""
    if not job.running:
        st.rerun()
    st.markdown(
        f"Re-ingest started by **{label(job.started_by)}** is running ({job.seconds:.0f} s so far); "
        "chat keeps answering meanwhile."
    )
    tasks = job.progress.snapshot()
    if not tasks:
        st.progress(0.0, text="planning: comparing the source with the index")
    for task, (done, total) in tasks.items():
        st.progress(job.progress.fraction(task), text=f"{task}: {done} / {total}")


def show_finished_job(job: IngestJob) -> None:
    if job.error:
        st.error(f"The re-ingest stopped: {label(job.error)}. Documents not yet written keep their previous version.")
    elif job.summary is not None:
        at = time.strftime("%H:%M:%S", time.localtime(job.ended or time.time()))
        st.success(f"Re-ingest finished at {at} in {job.seconds:.1f} s ({job.summary.chunks_in_index} chunks).")
        show_changes(job.summary)


components, principal = require(Page.CORPUS)
settings = components.settings
collection = settings.store.collection
catalog = read_catalog(settings, collection)
jobs = runtime.ingest_jobs()
job = jobs.latest
busy = job is not None and job.running

st.title(f"Corpus: {collection}")
if catalog.source is None:
    st.info(f"Collection {collection!r} has not been synced yet: run `assistant ingest FOLDER` once.")
    st.stop()
source = Path(catalog.source)
st.caption(f"Synced from {label(str(source))} · {len(catalog.documents)} documents")
st.dataframe(
    [
        {
            "path": d.path,
            "title": d.title,
            "groups": ", ".join(d.groups) or "(nobody)",
            "version": d.version,
            "chunks": d.chunks,
            "flagged": "; ".join(d.flags),  # signs of text aimed at the assistant, found when it was read
        }
        for d in catalog.documents
    ],
    hide_index=True,
)
flagged = [d.path for d in catalog.documents if d.flags]
if flagged:
    st.warning(
        f"{len(flagged)} document(s) hold text aimed at the assistant (instructions, forged quote lines): "
        + label(", ".join(flagged))
        + ". They are indexed and shown only as quoted text; check them and fix or remove them."
    )

preview, reingest = st.columns(2)
if preview.button("Preview changes (dry run)", disabled=busy):
    st.session_state[DRY_RUN_KEY] = run_ingest(components, source, collection, dry_run=True)
accept_widening = False
if settings.ingest.strict:  # strict mode refuses a widening unless the owner accepts it, as --accept-widening does
    accept_widening = st.checkbox(
        "Accept widenings (documents gaining readers); recorded with your name",
        disabled=busy,
        help="Preview first: the dry run lists each document that would gain readers and the rules deciding it.",
    )
if reingest.button("Re-ingest now", type="primary", disabled=busy):
    job = jobs.start(source, collection, principal.user_id, accept_widening=accept_widening)
    st.session_state.pop(DRY_RUN_KEY, None)
dry_run = st.session_state.get(DRY_RUN_KEY)
if isinstance(dry_run, SyncSummary):
    st.subheader("Would change")
    show_changes(dry_run)
if job is not None:
    st.subheader("Latest re-ingest")
    if job.running:
        show_running_job(job)
    else:
        show_finished_job(job)

st.subheader("Impact on the golden questions")
impact = latest_report(settings.eval_runs_dir, collection)
if impact is None:
    st.caption("No sync has touched a document of the golden set yet.")
else:
    counts = impact["counts"]
    st.markdown(
        f"Sync of {impact['created']}: **{counts['touched']}** of {impact['questions']} golden questions touched "
        f"({impact.get('skipped', 0)} more not re-asked: they expect none of the documents it changed) · "
        f"recall worse for **{counts['worse']}**, better for {counts['better']} · **{counts['stale']}** stale · "
        f"**{counts['unreadable']}** no longer readable by their asker"
    )
    st.dataframe(
        [
            {
                "question": i["question"],
                "touched": ", ".join(f"{d} ({how})" for d, how in i["touched"].items()),
                "recall before": i["recall_before"],
                "recall after": i["recall_after"],
                "moved to": ", ".join(i["moved"].values()),
                "asker cannot read": ", ".join(i["unreadable"]),
            }
            for i in impact["items"]
        ],
        hide_index=True,
        width="stretch",
        column_config=IMPACT_COLUMNS,  # long questions and document lists wrap within the page, not off its right
    )

show_superseded(settings, principal)  # adapters that learned from documents this corpus changed since

st.subheader("Corpus gaps")
gaps, hidden_gaps = gaps_for(principal, files_of(settings), DocumentGroups(settings), collection)
if hidden_gaps:
    st.caption(
        f"{hidden_gaps} more gap(s) came from questions that retrieved documents outside your groups, or that were "
        "asked by someone holding groups you do not: an owner in those groups sees them."
    )
if gaps:
    st.dataframe(
        [
            {
                "question": g["question"],
                "asked": g["asked"],
                "note": g.get("note") or "",
                "by": g["provenance"]["reviewer"],
            }
            for g in gaps
        ],
        hide_index=True,
    )
else:
    st.caption("No gaps recorded: reviewers add them from the review queue (`assistant review gap`).")

st.subheader("History")
runs = read_runs(settings.data_dir, collection)
if runs:
    st.dataframe(
        [
            {
                "finished": r["finished"],
                "by": r.get("started_by", ""),
                **{k: r[k] for k in CHANGE_KINDS},
                "failed": len(r["failed"]),
                "chunks in index": r["chunks_in_index"],
                "seconds": r["seconds"],
            }
            for r in runs
        ],
        hide_index=True,
    )
else:
    st.caption("No syncs recorded yet.")
