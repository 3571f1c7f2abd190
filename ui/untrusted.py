"""Text that comes from documents, shown as text: never as markdown or HTML.

A document a user may read can still be hostile: its text, title, section or file name may carry
`![logo](https://evil.example/pixel.png)` (a request to that server as soon as it renders), links, or HTML; the
model's answer copies documents, so it is document text too. Pages show such text with `st.text` (no markdown
parsing at all), or, where Streamlit only takes markdown (captions, alerts, expander labels), through
`escape_markdown`: every ASCII punctuation character backslash-escaped, which markdown turns back into that very
character, so no image, link, emphasis, code span, HTML tag, math or table can form. `st.dataframe` cells are
plain text already.
"""

from __future__ import annotations

import re

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character: all markdown may escape


def escape_markdown(text: str) -> str:
    """`text` as markdown that renders exactly `text` (line breaks aside)."""
    return _PUNCTUATION.sub(r"\\\1", text)


def label(text: str) -> str:
    """Document text for a one-line markdown slot (an expander's heading, a caption): escaped, on one line."""
    return escape_markdown(" ".join(text.split()))
