"""Domain errors. Each message is one line a person can act on; the CLI prints it and exits 1.

Raised inside the library, translated once at the edges (CLI, UI); never `assert` on user input.
"""

from __future__ import annotations


class AssistantError(Exception):
    """Base of every user-facing error."""


class ConfigError(AssistantError):
    """Settings or a profile are invalid or name something that does not exist."""


class IdentityError(AssistantError):
    """The caller cannot be identified, so no groups can be given to them."""


class IndexInUseError(AssistantError):
    """The embedded index is held by another process."""


class SyncInProgressError(AssistantError):
    """Another process is syncing this data directory."""


class StoreError(AssistantError):
    """The vector store refused an operation or is not reachable."""


class SourceError(AssistantError):
    """An ingestion source cannot be read at all (missing folder, wrong format)."""


class AccessPolicyError(AssistantError):
    """An access policy file is invalid; the message names the file, the line and the reason."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class DocumentError(AssistantError):
    """One document cannot be ingested; the sync goes on with the others and reports it."""


class AccessRuleError(DocumentError):
    """A document's own access metadata conflicts with the policy: it is not served to anyone (fail closed)."""


class CollectionMismatchError(AssistantError):
    """A collection was built from another source or with another embedder."""


class TracingError(AssistantError):
    """Tracing is off or was given something that is not a trace."""


class QuestionTooLongError(AssistantError):
    """A question over `retrieval.max_question_chars`: refused before it is searched, logged, traced or generated."""
