"""What a reviewer may see of other people's questions: the review queue and saved evaluation runs.

- An entry (a review group, a query of a retrieval run, a sample of an answer run, a leak of a probe) shows its
  question, document titles and ids only to a reviewer who may read every document it names, by the rule the
  store's filter applies (`Principal.may_read`: the reviewer's groups meet the document's groups).
- A document's groups are the ones the sync state records for it now; for a document no longer there, the ones
  logged when it was retrieved; a document with neither is readable by no one (fail closed).
- A review group also needs a reviewer who holds every group its askers held: a question can carry what its asker
  learned from restricted work ("Is <name> on the layoff list?" retrieves nothing, yet says plenty). A question
  whose asker's groups are unknown (feedback without its logged question) is shown to no reviewer (fail closed).
- Any other entry is redacted: counts and the reason, and its id, which the reviewer hands to someone who may read
  its documents and holds its askers' groups. The reason never names the groups the reviewer lacks.
- Askers are pseudonymous: a keyed hash of their user id (HMAC-SHA256 under a random key created on first use in
  the data directory, `pseudonym.key`). The same asker gets the same pseudonym in every entry and every week;
  only whoever holds the data directory (who can read `questions.jsonl` anyway) can tie it to a person. No
  reviewer is exempt, not even an owner of the asker's groups: SSO tokens say who is in a group, not who owns it,
  and the queue's decisions (golden, training, gap, dismiss) need the question, never the person.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path

from assistant.access import Principal
from assistant.settings import Settings
from ingestion.catalog import read_catalog
from ingestion.state import DocumentState

REDACTED = "(redacted)"
KEY_FILE = "pseudonym.key"


def why_redacted(unreadable: int, documents: int, *, outside_askers: int = 0, unknown_askers: int = 0) -> str:
    """Why an entry is redacted, in one line of counts: never its question, nor the groups the reviewer lacks.
    `outside_askers`: its questions asked by someone with groups the reviewer does not hold; `unknown_askers`: its
    questions whose asker's groups are unknown."""
    reasons = []
    if unreadable:
        reasons.append(f"{unreadable} of {documents} documents are outside your groups (or no longer indexed)")
    if outside_askers:
        reasons.append(f"asked by someone with groups you do not hold ({outside_askers} question(s))")
    if unknown_askers:
        reasons.append(f"{unknown_askers} question(s) came from feedback without the asker's groups")
    if unknown_askers:  # no reviewer can be shown to hold groups no one knows
        action = "no reviewer sees it in full; it leaves the queue with the review window"
    elif outside_askers:
        action = "hand its id to someone who may read what it retrieved and holds its askers' groups"
    else:
        action = "hand its id to someone who may read them"
    return "; ".join(reasons) + ": " + action


class DocumentGroups:
    """Who may read each document, as the sync state records it now; each collection is read once."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._collections: dict[str, dict[str, DocumentState]] = {}

    def _documents(self, collection: str) -> dict[str, DocumentState]:
        if collection not in self._collections:
            documents = read_catalog(self._settings, collection).documents
            self._collections[collection] = {d.doc_id: d for d in documents}
        return self._collections[collection]

    def groups(self, collection: str, doc_id: str, logged: Sequence[str] = ()) -> tuple[str, ...]:
        """The document's groups now; the `logged` ones for a document no longer indexed; else none."""
        known = self._documents(collection).get(doc_id)
        return known.groups if known is not None else tuple(logged)

    def titled(self, collection: str, title: str) -> list[str]:
        """The documents whose title is `title` (the leak probe asks for every document by its title)."""
        return [d.doc_id for d in self._documents(collection).values() if d.title and d.title == title]

    def unreadable(self, reviewer: Principal, collection: str, doc_ids: Iterable[str]) -> set[str]:
        return {doc for doc in doc_ids if not reviewer.may_read(self.groups(collection, doc))}


class Pseudonyms:
    """Stable pseudonyms for askers: `asker-` and 12 hex digits of HMAC-SHA256(key, user id)."""

    def __init__(self, data_dir: Path) -> None:
        self._key = _key(data_dir / KEY_FILE)

    def of(self, user_id: str) -> str:
        return "asker-" + hmac.new(self._key, user_id.encode(), hashlib.sha256).hexdigest()[:12]


def _key(path: Path) -> bytes:
    """The data directory's pseudonym key, created (owner-only) on first use; two processes agree on one."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        draft.write_bytes(secrets.token_bytes(32))
        draft.chmod(0o600)
        try:
            os.link(draft, path)  # atomic, and fails if another process created the key first
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_bytes()
