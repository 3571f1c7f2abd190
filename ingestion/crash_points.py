"""Fault injection for the crash-safety tests (tests/test_crash_safety.py).

`ASSISTANT_CRASH_AT=name:n` SIGKILLs this process the n-th time it reaches `crash_point(name)`. Unset (always,
outside those tests) it does nothing.
"""

from __future__ import annotations

import os
import signal

_reached: dict[str, int] = {}


def crash_point(name: str) -> None:
    wanted = os.environ.get("ASSISTANT_CRASH_AT")
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point == name:
        _reached[name] = _reached.get(name, 0) + 1
        if _reached[name] >= int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
