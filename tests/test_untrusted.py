"""Document text on the pages and in the terminal is shown as text: a hostile document's markdown, links, images
and HTML never render (no request to its server when a citation opens), and "verified" is only said of what the
citation check verified. Rendered with markdown-it (CommonMark, as Streamlit's renderer), and through AppTest."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from rich.console import Console
from streamlit.testing.v1 import AppTest

from assistant.answering import Answer, Citation
from assistant.ask_cli import render_sources, to_json
from assistant.citation_check import check_citations
from assistant.retriever import RetrievedChunk
from assistant.settings import Settings, load_settings
from tests.conftest import HANDBOOK, REPO, ingest
from ui.untrusted import document_html, escape_markdown, label

PIXEL = "![logo](https://evil.example/pixel.png)"
HOSTILE = [
    PIXEL,
    "[click me](https://evil.example/login) and <https://evil.example/auto>",
    '<img src="https://evil.example/x.png"> <a href="https://evil.example">a</a>',
    "**bold** _it_ `code` ~~gone~~ $x^2$ :red[alert]",
    "# Heading\n\n> quoted\n\n- item\n1. item\n\n| a | b |\n|---|---|\n| 1 | 2 |",
    "[ref]: https://evil.example/ref\n\nSee [ref] and \\*not\\* 5 \\ 3 & &amp; &#60;",
]
# Tokens a document's text must never turn into on a page.
FORMED = {"image", "link_open", "html_inline", "html_block", "strong_open", "em_open", "code_inline", "s_open"}
FORMED |= {"heading_open", "blockquote_open", "bullet_list_open", "ordered_list_open", "table_open", "fence"}
REACHING_OUT = {"image", "link_open", "html_inline", "html_block"}  # what a page's own formatting never needs


def markdown() -> MarkdownIt:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def formed(source: str, kinds: set[str] = FORMED) -> set[str]:
    tokens = markdown().parse(source)
    return ({t.type for t in tokens} | {c.type for t in tokens for c in t.children or []}) & kinds


def rendered_text(source: str) -> str:
    tokens = markdown().parse(source)
    return "".join(c.content for t in tokens for c in t.children or [] if c.type in ("text", "text_special"))


@pytest.mark.parametrize("text", HOSTILE)
def test_escaped_document_text_renders_as_itself(text: str) -> None:
    assert formed(text)  # left alone, each would render as markdown
    assert not formed(escape_markdown(text))
    assert rendered_text(label(text)) == " ".join(text.split())


def hostile_answer() -> Answer:
    blocks = [
        RetrievedChunk(
            1,
            1.0,
            "c1",
            "evil/[a](https://evil.example).md",
            f"{PIXEL} Handbook",
            "evil/[a](https://evil.example).md",
            "<b>Passwords</b>",
            ("everyone",),
            f"Employees reset passwords at the self-service portal.\n\n{PIXEL}",
        ),
        RetrievedChunk(2, 0.9, "c2", "parking.md", "Parking", "parking.md", None, ("everyone",), "Parking is north."),
    ]
    text = (
        f"Reset passwords at the self-service portal {PIXEL} [1]. The merger with Acme closes in March [2].\n"
        '[1] "Employees reset passwords at the self-service portal."\n'
        '[2] "Parking is north."\n'
        '[7] "Acme is buying the company."'
    )
    checked = check_citations(text, blocks)
    return Answer(
        question="How do I reset my password?",
        answer=checked.text,
        outcome="answered",
        citations=[Citation(n, c.doc_id, c.title, c.path, c.section) for n, c in enumerate(blocks, start=1)],
        retrieved=blocks,
        model="tiny",
        adapter=None,
        unsupported_quotes=checked.unsupported_quotes,
        quotes=checked.quotes,
        fallback_sentences=checked.fallback_sentences,
    )


def _show(answer: object) -> None:  # run by AppTest as a script of its own: it imports what it needs
    from typing import cast

    from assistant.answering import Answer
    from ui.answer_view import show_answer

    show_answer(cast(Answer, answer))


def markdown_sources(at: AppTest) -> list[str]:
    """Every string the page hands Streamlit's markdown renderer."""
    kinds = ("markdown", "caption", "warning", "info", "error", "success")
    return [e.value for kind in kinds for e in getattr(at, kind)] + [e.label for e in at.expander]


def test_the_chat_page_shows_answers_and_sources_as_text_and_verifies_only_what_was_checked() -> None:
    at = AppTest.from_function(_show, args=(hostile_answer(),), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    sources = markdown_sources(at)
    assert sources and not [s for s in sources if formed(s)]
    assert any(rendered_text(e.label).startswith(f"[1] {PIXEL} Handbook · <b>Passwords</b>") for e in at.expander)
    texts = [t.value for t in at.text]
    assert f"Reset passwords at the self-service portal {PIXEL} [1]. The merger with Acme closes in March [2]." in texts
    for quote in ("Parking is north.", "Acme is buying the company."):  # a fallback's quote; a quote of no block
        assert any(quote in t and "not verified" in t for t in texts), quote
    assert any("The merger with Acme closes in March" in t for t in texts if t.startswith("No source it cites"))
    marks = [c.value for c in at.caption]
    assert marks.count("quoted verbatim from the source") == 1  # block 1's quote only
    assert "in the source, but no sentence of the answer rests on it: not verified" in marks


def test_the_terminal_prints_document_text_literally_and_says_what_is_not_verified() -> None:
    answer = hostile_answer()
    title = "[link=https://evil.example]Handbook[/link] [bold]x[/bold]"
    answer = Answer(**{**answer.__dict__, "citations": [Citation(1, "d", title, "d.md", None)]})
    console = Console(record=True, width=200, color_system=None)
    render_sources(answer, console)
    printed = console.export_text()
    assert title in printed
    assert "not verified: The merger with Acme closes in March" in printed
    assert 'not verified: "Acme is buying the company."' in printed
    shown = to_json(answer)
    assert shown["fallback_sentences"] == ["The merger with Acme closes in March"]
    assert [q["verified"] for q in shown["quotes"]] == [True, False, False]  # type: ignore[attr-defined]


@pytest.fixture
def hostile_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Settings, Path]]:
    """A corpus whose file names carry markdown: the corpus page lists them."""
    corpus = tmp_path / "corpus"
    (corpus / "company").mkdir(parents=True)
    (corpus / "loose").mkdir()
    shutil.copy(HANDBOOK / "company" / "holidays.md", corpus / "company" / "a` ![x](https:evil.example%2Fp.png) `b.md")
    (corpus / "loose" / "**no rule** <img src=x>.md").write_text("# Loose\n\nNo rule covers it.\n")
    (corpus / "access.yaml").write_text('rules:\n  - match: "company/**"\n    groups: [everyone]\n', encoding="utf-8")
    settings = load_settings(data_dir=tmp_path / "data")
    assert ingest(settings, corpus).ok
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(settings.data_dir))
    yield settings, corpus
    import streamlit as st

    from ui import runtime as app_runtime

    app_runtime.components().close()
    st.cache_resource.clear()


def test_the_corpus_page_shows_document_names_as_text(hostile_corpus: tuple[Settings, Path]) -> None:
    _, corpus = hostile_corpus
    (corpus / "company" / "a` ![x](https:evil.example%2Fp.png) `b.md").write_text("# Holidays\n\nFridays off.\n")
    at = AppTest.from_file(str(REPO / "ui" / "app.py"), default_timeout=120)
    at.run()
    at.selectbox(key="dev_user").set_value("olivia").run()
    at.switch_page(str(REPO / "ui" / "views" / "corpus.py")).run()
    at.button[0].click().run()  # dry run: lists the changed document and the uncovered one
    assert not at.exception, at.exception
    sources = markdown_sources(at)
    assert not [s for s in sources if formed(s, REACHING_OUT)]
    shown = [rendered_text(s) for s in sources]
    assert any("company/a` ![x](https:evil.example%2Fp.png) `b.md" in s for s in shown)
    assert any("loose/**no rule** <img src=x>.md" in s for s in shown)


REAL_TAG = re.compile(r"<(img|a|iframe|script|style|link|object|embed|svg|video|audio|source|form)\b", re.I)


@pytest.mark.parametrize("text", HOSTILE)
def test_a_passage_keeps_its_structure_and_nothing_in_it_can_fetch(text: str) -> None:
    html = document_html(text)
    assert not REAL_TAG.search(html)  # no image, link or HTML of the document's becomes a tag
    if "evil.example" in text:
        assert "evil.example" in html  # it stays, as literal text


def test_a_passages_headings_lists_tables_and_bold_render() -> None:
    table = "| Location | Cap |\n|---|---|\n| Reno | $155 |"
    html = document_html(f"## Gradual return\n\n- **60% pay** in week 1\n\n{table}\n\n---\n\nLine one  \nline two")
    assert "<hr />" in html and "<br />" in html  # a rule and a hard break are no attributes
    assert "<h5>Gradual return</h5>" in html and "<strong>60% pay</strong>" in html and "<li>" in html
    assert "<td>Reno</td>" in html and "**" not in html and "##" not in html


def test_the_source_panes_render_passages_through_the_safe_subset() -> None:
    at = AppTest.from_function(_show, args=(hostile_answer(),), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    shown = [h.proto.body for h in at.html]
    assert shown and not [h for h in shown if REAL_TAG.search(h)]


def test_every_passage_of_the_sample_handbook_renders() -> None:
    from ingestion.readers import parse_document

    sections = [
        section
        for path in sorted(HANDBOOK.rglob("*"))
        if path.suffix in {".md", ".txt", ".html", ".docx", ".pdf"}
        for section in parse_document(path.suffix, path.name, path.read_bytes()).sections
    ]
    assert len(sections) > 100
    assert all(document_html(s.text) or not s.text.strip() for s in sections)  # none refused by the checks
