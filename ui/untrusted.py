"""Text that comes from documents, shown as text, or as the small safe part of Markdown that cannot reach out.

A document a user may read can still be hostile: its text, title, section or file name may carry
`![logo](https://evil.example/pixel.png)` (a request to that server as soon as it renders), links, or HTML; the
model's answer copies documents, so it is document text too. Pages show such text with `st.text` (no markdown
parsing at all), or, where Streamlit only takes markdown (captions, alerts, expander labels), through
`escape_markdown`: every ASCII punctuation character backslash-escaped, which markdown turns back into that very
character, so no image, link, emphasis, code span, HTML tag, math or table can form. `st.dataframe` cells are
plain text already.

A source pane shows its passage's structure (headings, lists, tables, bold) through `document_html`: markdown-it
(CommonMark and tables) with raw HTML off and the rules that make images, links, autolinks and link reference
definitions turned off, so such markup stays literal text (escaped); the HTML it makes has no attribute at all,
hence no `src` or `href`, and nothing on the page fetches anything for it. `st.html` shows it (DOMPurify as well).
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character: all markdown may escape


def escape_markdown(text: str) -> str:
    """`text` as markdown that renders exactly `text` (line breaks aside)."""
    return _PUNCTUATION.sub(r"\\\1", text)


def document_html(text: str) -> str:
    """A passage's Markdown as HTML without images, links or raw HTML (those stay literal text); headings at
    one small size (a passage's `#` is its document's title, not the page's)."""
    tokens = _SAFE_MARKDOWN.parse(text)
    for token in (t for block in tokens for t in [block, *(block.children or [])]):
        start = token.attrs.get("start") if token.type == "ordered_list_open" else None
        token.attrs, token.info = {}, ""  # no `style` or `class="language-<the document's word>"`
        if isinstance(start, int):
            token.attrs["start"] = start  # "3." stays step 3: a number, which fetches nothing
    rendered = _SAFE_MARKDOWN.renderer.render(tokens, _SAFE_MARKDOWN.options, {})
    if _REACHING_OUT.search(rendered) or _ATTRIBUTE.search(rendered):  # neither can form; checked so none slips by
        raise ValueError("document text rendered to markup that could fetch something")
    return _HEADING.sub(r"<\1h5>", rendered)


_SAFE_MARKDOWN = (
    MarkdownIt("commonmark", {"html": False})
    .enable(["table", "strikethrough"])
    .disable(["image", "link", "autolink", "reference"])
)
# A real tag of these (document text's own "<img ...>" is escaped to "&lt;img ...").
_REACHING_OUT = re.compile(r"<(?:img|a|iframe|script|style|link|object|embed|svg|video|audio|source|form)\b", re.I)
# A tag with anything after its name but the self-closing "/>" of <hr /> and <br />.
_ATTRIBUTE = re.compile(r"<(?!ol start=\"\d+\">)[a-z][a-z0-9]*\s+(?!/>)")
_HEADING = re.compile(r"<(/?)h[1-6]>")


def label(text: str) -> str:
    """Document text for a one-line markdown slot (an expander's heading, a caption): escaped, on one line."""
    return escape_markdown(" ".join(text.split()))
