"""How the chat page shows a generated answer: its label, its statement, what is not verified, its sources.

Everything here is document text or the model's copy of it, so it is shown with `st.text` or escaped
(`ui.untrusted`). Two claims, never mixed up:
- the answer's label (`assistant.answer_support`): "Answer supported" (green) only when everything its answer line
  states is in its verified quotes; "Quoted from the source, but..." or "Not supported" (yellow) otherwise;
- a quote's mark: "quoted verbatim from the source" only when the citation check verified it (a verbatim passage of
  its block, of at least the grammar's shortest quote, in a block some sentence of the answer rests on by its own
  words, not one the decoding grammar named by fallback). Every quote not verified is listed.
"""

from __future__ import annotations

import streamlit as st

from assistant.answering import Answer
from assistant.citation_check import QuoteLine
from assistant.house_format import statement_lines
from ui.untrusted import document_html, label

VERIFIED = "quoted verbatim from the source"
NOT_VERIFIED = "Not verified: check these before relying on them."


MENDED = (
    "The model's own wording did not check out against its quotes, so this answer is the source's sentence "
    "(or the model's line with the sentence that states it)."
)


def show_answer(answer: Answer) -> None:
    st.text(statement_lines(answer.answer))
    if answer.mended:
        st.caption(MENDED)
    show_label(answer)
    show_unverified(answer)
    show_sources(answer)
    with st.expander(f"All {len(answer.retrieved)} passages searched"):
        st.text("\n".join(f"{c.rank}. {c.title} · {c.path}" for c in answer.retrieved))


def show_label(answer: Answer) -> None:
    support = answer.support
    if support is None:
        return
    if support.label == "supported":
        st.success(support.text)
        return
    st.warning(support.text)
    if support.missing:
        st.text("Not verified: " + ", ".join(support.missing))


def show_unverified(answer: Answer) -> None:
    """Sentences only the grammar's fallback cites, and every quote not verified."""
    if not answer.fallback_sentences and not answer.unsupported_quotes:
        return
    st.warning(NOT_VERIFIED)
    for sentence in answer.fallback_sentences:
        st.text(f"No source it cites holds this: {sentence}")
    for quote in answer.unsupported_quotes:
        st.text(f'Quote not verified in its source: "{quote}"')


def show_sources(answer: Answer) -> None:
    for citation in answer.citations:
        chunk = answer.retrieved[citation.n - 1]
        heading = f"[{citation.n}] {citation.title}" + (f" · {citation.section}" if citation.section else "")
        path, doc_id = citation.path, citation.doc_id
        quotes = [q for q in answer.quotes if q.block == citation.n]
        show_passage(heading, path if path == doc_id else f"{path} (document {doc_id})", chunk.text, quotes)


CLOSEST = 3  # passages shown under a refusal made before generation


def show_closest(answer: Answer) -> None:
    """Under a refusal made before generation with passages found (all readable by this user: retrieval is
    filtered by their groups), the best of them, for the user to judge; else why nothing is shown."""
    if not answer.retrieved or answer.outcome not in ("refused-recall", "refused-evidence"):
        st.caption("No approved source answers this, so the assistant does not guess.")
        return
    st.caption(f"The {min(CLOSEST, len(answer.retrieved))} closest passages you can read:")
    for chunk in answer.retrieved[:CLOSEST]:
        show_passage(chunk.title + (f" · {chunk.section}" if chunk.section else ""), chunk.path, chunk.text, [])


def show_passage(heading: str, where: str, text: str, quotes: list[QuoteLine]) -> None:
    """One source pane: its heading, where it is, the quotes taken from it with their marks, the passage."""
    with st.expander(label(heading)):
        st.caption(label(where))  # the path once
        for quote in quotes:
            st.text(f'"{quote.text}"')
            st.caption(quote_mark(quote))
        try:
            html = document_html(text)
        except ValueError:  # the renderer made markup it should not have: the passage as plain text instead
            html = ""
        if html.strip():
            st.html(html)
        else:
            st.text(text)  # nothing to render (st.html refuses empty content)


def quote_mark(quote: QuoteLine) -> str:
    if quote.verified:
        return VERIFIED
    if quote.verbatim:
        return "in the source, but no sentence of the answer rests on it: not verified"
    return "NOT found in the source: not verified"
