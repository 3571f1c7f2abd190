"""Document text on a terminal: shown, never obeyed.

A document (its text, title, section or file name) and the model's answer that copies it can carry terminal
control sequences: an ANSI escape that recolours or clears the screen, an OSC-8 hyperlink, a carriage return that
overwrites a line, a newline inside a title that forges a result line of its own, a bidi override that reorders
what is read. Every CLI edge passes such text through `visible` (one field: every control character as a visible
escape, `\\n` and `\\t` included) or `visible_lines` (a multi-line body: line breaks kept, the rest escaped).
"""

from __future__ import annotations

import re

from rich.markup import escape

# C0 and C1 controls and DEL, plus the Unicode bidi embeddings, overrides and isolates ("Trojan Source").
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def visible(text: str) -> str:
    """One field (an id, a title, a path, an error) as the characters it holds, on one line."""
    return _CONTROL.sub(_escape, text)


def visible_lines(text: str) -> str:
    """A body of text with its line breaks, every other control character shown as an escape."""
    return _CONTROL_BUT_NEWLINE.sub(_escape, text)


def has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def shown(text: str) -> str:
    """One field inside a Rich markup line: neither markup (`[/bold]`) nor terminal control."""
    return escape(visible(text))
