"""Who is using the app: Streamlit's native OIDC sign-in in production, a dev user picker in development.

`current_principal()` renders the sign-in (or the picker) and stops the page until someone is signed in. The dev
picker is refused under a profile that turns dev users off: production identities come from SSO only.

The dev picker keeps its choice in the URL (`?user=dana`), so a reload or a new tab of that URL stays signed in as
the same user. That adds no power: on loopback, under dev sign-in, anyone may pick any user anyway. OIDC never
reads it.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from assistant.access import Principal
from assistant.errors import IdentityError
from assistant.identity import load_dev_user_names, load_dev_users
from assistant.settings import Settings
from ui.roles import LOOPBACK, display_name, principal_from_claims
from ui.untrusted import label

DEV_USER_KEY = "dev_user"
USER_PARAM = "user"  # the dev user's id in the URL's query


def current_principal(settings: Settings) -> Principal:
    if settings.ui.auth == "oidc":
        return _oidc_principal(settings)
    return _dev_principal(settings)


def _oidc_principal(settings: Settings) -> Principal:
    ui = settings.ui
    if not st.user.get("is_logged_in", False):
        for key in list(st.session_state):  # signed out: nothing of the previous user stays in this session
            del st.session_state[key]
        st.title("Company assistant")
        st.write("Sign in with your company account to ask about the documents you may read.")
        if st.button("Sign in", type="primary"):
            if ui.oidc_provider:
                st.login(ui.oidc_provider)
            else:
                st.login()
        st.stop()
    claims: dict[str, Any] = st.user.to_dict()
    principal = principal_from_claims(claims, ui)
    with st.sidebar:
        st.markdown(f"**{label(display_name(claims, ui))}**")  # a claim is not markdown: no image is fetched
        _groups_caption(principal)
        if st.button("Sign out"):
            st.logout()
    if not principal.groups:
        st.warning(f"Your sign-in carries no '{ui.groups_claim}' claim: you can read no documents.")
    return principal


def _dev_principal(settings: Settings) -> Principal:
    identity = settings.identity
    if not identity.allow_dev_users or identity.users_file is None:
        raise IdentityError(
            f"dev sign-in is refused under profile '{settings.profile}': identities come from SSO only (ui.auth=oidc)"
        )
    address = st.get_option("server.address")
    if address not in LOOPBACK:  # `streamlit run ui/app.py` with no address serves every interface
        raise IdentityError(
            f"dev sign-in lets anyone pick any user, so it is served on localhost only (server.address is "
            f"{address or 'unset: every interface'}); start the app with `assistant ui`, or set ui.auth=oidc"
        )
    users = load_dev_users(identity.users_file)
    names = load_dev_user_names(identity.users_file)
    if DEV_USER_KEY not in st.session_state:  # a new session (a reload, a new tab): the user its URL names
        named = st.query_params.get(USER_PARAM)
        if named in users:
            st.session_state[DEV_USER_KEY] = named
    with st.sidebar:
        st.caption("Development sign-in: users of " + str(identity.users_file))
        name = st.selectbox(
            "Signed in as",
            sorted(users),
            key=DEV_USER_KEY,
            format_func=lambda user: f"{names.get(user, user)} ({user})",
        )
        principal = users[name]
        _groups_caption(principal)
    if st.query_params.get(USER_PARAM) != name:  # also after a page switch, which clears the query
        st.query_params[USER_PARAM] = name
    return principal


def _groups_caption(principal: Principal) -> None:
    st.caption("Groups: " + (", ".join(sorted(principal.groups)) or "none"))
