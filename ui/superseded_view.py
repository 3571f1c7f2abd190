"""The adapters trained on documents changed or deleted since (`tuning/superseded.py`), on the corpus and quality
pages: one warning each, shown to a user who holds all of the adapter's data groups (who it may be served to),
naming only the documents that user may read (and counting the others)."""

from __future__ import annotations

import streamlit as st

from assistant.access import Principal
from assistant.settings import Settings
from tuning import registry
from tuning.superseded import superseded
from ui import untrusted


def show_superseded(settings: Settings, principal: Principal) -> None:
    records = [r for r in registry.list_adapters(settings) if principal.holds_all(r.data_groups)]
    for entry in superseded(settings, records):
        shown = entry.readable_by(principal)
        hidden = len(entry.stale) - len(shown.stale)
        more = f" · {hidden} more document(s) you may not read" if hidden else ""
        line = (
            untrusted.label(shown.line())
            if shown.stale
            else untrusted.label(f"{entry.adapter}: trained on superseded documents")
        )
        st.warning(line + more + " · rebuild with `assistant tune build-data --changed-only`")
