"""Every page starts with `require(page)`: the signed-in principal, or a stop with "forbidden" for someone whose
groups do not allow the page (navigation hides it too; this holds when a page is reached some other way)."""

from __future__ import annotations

import streamlit as st

from assistant.access import Principal
from assistant.components import Components
from ui import runtime
from ui.roles import Page, may_open

PRINCIPAL_KEY = "principal"


def require(page: Page) -> tuple[Components, Principal]:
    components = runtime.components()
    principal = st.session_state.get(PRINCIPAL_KEY)
    if not isinstance(principal, Principal):
        st.error("Sign in first: this page needs to know who you are.")
        st.stop()
    if not may_open(principal, page, components.settings.ui):
        st.error(f"Forbidden: the {page.value} page is not open to your groups.")
        st.stop()
    return components, principal
