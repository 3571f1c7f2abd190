"""Who sees which page, and the principal an OIDC sign-in stands for. Plain functions: no Streamlit here.

A page is offered only to the groups that may use it, and a page reached directly (a bookmarked URL) checks again:
hidden is not enough, it must be forbidden. Groups come only from the identity provider's token (or, in
development, from the trusted dev users file); a token without the groups claim reads nothing (fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from assistant.access import Principal
from assistant.errors import IdentityError
from assistant.settings import UISettings

LOOPBACK = ("localhost", "127.0.0.1", "::1")  # the addresses dev sign-in may be served on


class Page(StrEnum):
    CHAT = "chat"
    CORPUS = "corpus"
    QUALITY = "quality"


def pages_for(principal: Principal, ui: UISettings) -> list[Page]:
    """Every signed-in user chats (an empty group set just finds nothing); owners and engineers get more."""
    pages = [Page.CHAT]
    if principal.groups & set(ui.corpus_owner_groups):
        pages.append(Page.CORPUS)
    if principal.groups & set(ui.engineer_groups):
        pages.append(Page.QUALITY)
    return pages


def may_open(principal: Principal, page: Page, ui: UISettings) -> bool:
    return page in pages_for(principal, ui)


def principal_from_claims(claims: Mapping[str, Any], ui: UISettings) -> Principal:
    """The principal of an ID token's claims. Groups must be a list of strings under `ui.groups_claim`; anything
    else (missing, a string, a number) gives no groups at all rather than a guess."""
    user_id = str(claims.get("sub") or claims.get(ui.name_claim) or "")
    if not user_id:
        raise IdentityError(
            f"your sign-in token has neither a 'sub' nor a '{ui.name_claim}' claim, so no one can be signed in; "
            "ask the identity provider's administrator to include 'sub' (ui.name_claim names the fallback)"
        )
    groups = claims.get(ui.groups_claim)
    if not isinstance(groups, list | tuple) or not all(isinstance(g, str) for g in groups):
        groups = []
    return Principal.of(user_id, list(groups))


def display_name(claims: Mapping[str, Any], ui: UISettings) -> str:
    return str(claims.get("name") or claims.get(ui.name_claim) or claims.get("sub") or "signed in")
