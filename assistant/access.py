"""Who is asking: the principal every retrieval call requires.

Groups come from the identity provider or the trusted dev users file, never from chat input.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """A user and the SSO groups they belong to. An empty group set can read nothing."""

    user_id: str
    groups: frozenset[str]

    def __post_init__(self) -> None:
        if not self.user_id:
            raise ValueError("a principal needs a user id")
        if isinstance(self.groups, str):  # a lone string would be iterated letter by letter
            raise TypeError("groups must be a set of group names, not a string")
        object.__setattr__(self, "groups", frozenset(g.strip() for g in self.groups if g.strip()))

    def may_read(self, document_groups: Iterable[str]) -> bool:
        """The rule the store's groups filter applies: a document is readable when one of its groups is one of
        the principal's. A document without groups is readable by no one (fail closed)."""
        return not self.groups.isdisjoint(document_groups)

    def holds_all(self, groups: Iterable[str]) -> bool:
        """Whether the principal is in every one of `groups`: what text learned from, or asked by, members of all
        those groups needs (an adapter, the evidence scorer, a reviewer of someone's question)."""
        return self.groups.issuperset(groups)

    @classmethod
    def of(cls, user_id: str, groups: list[str] | tuple[str, ...] | frozenset[str]) -> Principal:
        return cls(user_id=user_id, groups=frozenset(groups))
