"""User and document text shown by Streamlit elements that render Markdown (labels, captions, alerts) as the
characters it is: every ASCII punctuation mark backslash-escaped (CommonMark), so no link, image, HTML, heading,
colour directive or formula can come out of a question, a title or an error naming them; line breaks become
spaces. Bodies of such text go to `st.text` or a dataframe, which render nothing."""

from __future__ import annotations

import string

_ESCAPED = {ord(mark): "\\" + mark for mark in string.punctuation}


def plain(text: str) -> str:
    return " ".join(text.split()).translate(_ESCAPED)
