"""The app's entry (`assistant ui` runs `streamlit run` on this file).

Each run: the process's runtime (built once), the signed-in user, then the pages: every page's URL is registered,
and only those the user's groups allow are shown in the navigation. A hidden page reached by its URL renders
"Forbidden" (`ui.guard.require`) rather than Streamlit's "Page not found".
Errors are translated here, once: a domain error is one `st.error` line, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from assistant.errors import AssistantError
from ui import runtime
from ui.guard import PRINCIPAL_KEY
from ui.roles import Page, pages_for
from ui.sign_in import current_principal

PAGES = Path(__file__).parent / "views"
TITLES = {
    Page.CHAT: ("Chat", ":material/chat:"),
    Page.CORPUS: ("Corpus", ":material/folder:"),
    Page.QUALITY: ("Quality", ":material/monitoring:"),
}

st.set_page_config(page_title="Company assistant", page_icon=":material/chat:", layout="wide")
try:
    settings = runtime.settings()
    runtime.model_warmup()  # from the first visit on, the model loads while people sign in and type
    principal = current_principal(settings)
    st.session_state[PRINCIPAL_KEY] = principal
    offered = pages_for(principal, settings.ui)
    pages = [
        st.Page(
            PAGES / f"{page.value}.py",
            title=TITLES[page][0],
            icon=TITLES[page][1],
            default=page is Page.CHAT,
            visibility="visible" if page in offered else "hidden",
        )
        for page in Page
    ]
    st.navigation(pages).run()
except AssistantError as exc:
    st.error(str(exc))
