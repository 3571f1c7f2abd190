"""Where a candidate adapter stands in its rollout, and who is served it.

An adapter goes candidate -> shadow -> canary -> promoted (`tuning/rollout.py` moves it, with the checks and the
record of who, when, why and on what evidence). One candidate is in rollout at a time; `adapters/rollout.json`
says which, in which stage and at what share:

- **shadow**: that share of real questions is answered a second time by the candidate, after the served answer
  is delivered and never shown (`assistant/shadow.py`);
- **canary**: that share of users is served the candidate. The choice is sticky: a user's bucket is a hash of the
  adapter id and the user id, so the same user gets the same adapter on every question and on every process,
  and a new candidate draws a new sample of users.

Either way, only principals holding all of the candidate's data groups are ever given its output (the rule every
adapter is served under, `assistant/adapters.py`); the others keep the promoted adapter.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from assistant.errors import ConfigError
from assistant.json_file import FileWatch, read_json, write_json

log = logging.getLogger(__name__)
ROLLOUT = "rollout.json"
ROLLOUT_VERSION = 1
Stage = Literal["shadow", "canary"]
STAGES: tuple[Stage, ...] = ("shadow", "canary")


@dataclass(frozen=True)
class Rollout:
    """The candidate in rollout: its adapter id, its stage and its share (of questions, or of users)."""

    adapter: str
    stage: Stage
    share: float
    since: str

    def to_json(self) -> dict[str, Any]:
        return {
            "version": ROLLOUT_VERSION,
            "adapter": self.adapter,
            "stage": self.stage,
            "share": self.share,
            "since": self.since,
        }


def rollout_path(adapters: Path) -> Path:
    return adapters / ROLLOUT


def read_rollout(adapters: Path) -> Rollout | None:
    """The rollout in progress in the registry folder `adapters`; None: every user is served the promoted one."""
    path = rollout_path(adapters)
    if not path.is_file():
        return None
    try:
        data, _ = read_json(path, reads=ROLLOUT_VERSION)
        if data.get("adapter") is None:
            return None
        stage = str(data["stage"])
        share = float(data["share"])
        if stage not in STAGES or not 0 < share <= 1:
            raise ValueError(f"stage {stage!r} share {share}")
        return Rollout(str(data["adapter"]), stage, share, str(data.get("since", "")))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"{path}: not a rollout record ({exc}); restore it, or end the rollout with `assistant tune rollback`"
        ) from exc


def write_rollout(adapters: Path, rollout: Rollout | None) -> None:
    """Start, change (None: end) the rollout; the file is replaced whole."""
    if rollout is None:
        write_json(rollout_path(adapters), {"version": ROLLOUT_VERSION, "adapter": None})
    else:
        write_json(rollout_path(adapters), rollout.to_json())


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def bucket(adapter_id: str, user_id: str) -> float:
    """The user's place in [0, 1) for this candidate: the same on every question and every process."""
    digest = hashlib.sha256(f"canary\0{adapter_id}\0{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_canary(rollout: Rollout | None, user_id: str) -> bool:
    return rollout is not None and rollout.stage == "canary" and bucket(rollout.adapter, user_id) < rollout.share


class RolloutFile:
    """The rollout as a long-running process sees it: re-read when the file changes (a CLI beside the app moves
    the candidate along, or rolls it back, and the next question follows)."""

    def __init__(self, adapters: Path) -> None:
        self.adapters = adapters
        self._watch = FileWatch(rollout_path(adapters))
        self._rollout: Rollout | None = None

    def current(self) -> Rollout | None:
        """The rollout now; an unreadable file serves everyone the promoted adapter (logged once per change), so a
        bad edit never stops the chat; `tune rollback` replaces it."""
        if self._watch.changed():
            try:
                self._rollout = read_rollout(self.adapters)
            except ConfigError as exc:
                log.warning("no rollout applies: %s", exc)
                self._rollout = None
        return self._rollout
