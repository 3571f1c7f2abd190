from __future__ import annotations

import io
import unicodedata

import pytest

from assistant.errors import AccessRuleError, DocumentError
from ingestion.readers import parse_document
from tests.conftest import HANDBOOK


def test_markdown_front_matter_title_groups_and_sections() -> None:
    raw = b"---\ntitle: Leave\ngroups: [hr]\n---\n# Ignored H1\n\nIntro.\n\n## Birth parents\n\n20 weeks.\n"
    doc = parse_document(".md", "leave.md", raw)
    assert doc.title == "Leave"
    assert doc.front_matter_groups == ("hr",)
    assert any(s.heading == "Ignored H1 > Birth parents" and "20 weeks" in s.text for s in doc.sections)


def test_markdown_title_from_first_heading() -> None:
    doc = parse_document(".md", "x.md", b"# Holidays 2026\n\n## Dates\n\nJan 1\n")
    assert doc.title == "Holidays 2026"
    assert doc.front_matter_groups is None


def test_html_keeps_title_and_headings() -> None:
    raw = (HANDBOOK / "engineering" / "deploy-process.html").read_bytes()
    doc = parse_document(".html", "deploy-process.html", raw)
    assert doc.title
    assert len(doc.sections) > 1
    assert all("<" not in s.text[:50] for s in doc.sections)


def test_html_table_rows_keep_their_cells_apart() -> None:
    raw = (HANDBOOK / "company" / "office-locations-and-hours.html").read_bytes()
    text = "\n".join(s.text for s in parse_document(".html", "office-locations-and-hours.html", raw).sections)
    row = "| Reno Test & Assembly | 9850 Sage Flats Road, Reno, NV 89506, USA | Shift hours only |"
    assert row in text  # cells glued ("Assembly9850") are words no question contains
    assert "| Site | Address |" in text and "|\n| Pittsburgh HQ |" in text  # one table, one row per line


@pytest.mark.parametrize("name", ["company/benefits-overview.pdf", "legal/export-control-robots.pdf"])
def test_pdf_pages_become_sections(name: str) -> None:
    doc = parse_document(".pdf", name, (HANDBOOK / name).read_bytes())
    assert doc.sections[0].heading == "page 1"
    assert sum(len(s.text.split()) for s in doc.sections) > 100


def test_docx_keeps_its_headings_lists_and_tables() -> None:
    """Word's structure survives: a heading is a section, a bulleted paragraph a list item, and a table row keeps
    its cells on one line under the header row (flattened, "New York, San Francisco, Seattle" and "$340" were
    paragraphs apart and no sentence held both)."""
    doc = parse_document(".docx", "travel-policy.docx", (HANDBOOK / "company" / "travel-policy.docx").read_bytes())
    assert doc.title == "Business Travel Policy"
    hotels = next(s for s in doc.sections if s.heading == "Business Travel Policy > Hotels")
    assert "| Location | Nightly cap |\n|---|---|\n" in hotels.text
    assert "\n| New York, San Francisco, Seattle | $340 |\n" in hotels.text
    meals = next(s for s in doc.sections if s.heading == "Business Travel Policy > Meals and per diem")
    assert "\n- EU travel: EUR 62 per full travel day.\n" in meals.text
    assert sum(len(s.text.split()) for s in doc.sections) > 100


def test_a_docx_written_by_python_docx_reads_back_as_markdown() -> None:
    import docx

    written = docx.Document()
    written.add_heading("Parking", level=1)
    written.add_paragraph("Spots by site:")
    table = written.add_table(rows=2, cols=2)
    for cell, text in zip(table._cells, ["Site", "Spots", "Reno | NV", "40"], strict=True):
        cell.text = text
    written.add_paragraph("Bikes go in the basement.", style="List Bullet")
    written.add_paragraph("Ask reception for a fob.", style="List Number")
    raw = io.BytesIO()
    written.save(raw)
    doc = parse_document(".docx", "parking.docx", raw.getvalue())
    assert doc.title == "Parking"
    assert doc.sections[0].text == (
        "# Parking\n\nSpots by site:\n\n| Site | Spots |\n|---|---|\n| Reno \\| NV | 40 |\n\n"
        "- Bikes go in the basement.\n1. Ask reception for a fob."
    )


@pytest.mark.parametrize(
    ("kind", "raw", "reason"),
    [
        (".txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary data"),
        (".md", "caf\u00e9".encode("latin-1") + b" menu", "not valid UTF-8 (byte 0xe9 at offset 3)"),
        (".txt", b"   \n\n  ", "no text could be extracted"),
        (".pdf", b"%PDF-1.7\nthis is not really a pdf", "could not be read as PDF"),
        (".docx", b"PK\x03\x04 truncated zip", "could not be read as DOCX"),
        (".md", b"---\ngroups: [hr\n---\nbody", "front matter line"),
        (".md", b"---\ngroups: hr\n---\nbody", "non-empty list"),
        (".md", b"---\ngroups:\n---\nbody", "non-empty list"),  # empty is an error, never "no narrowing"
    ],
)
def test_bad_input_is_a_clear_document_error(kind: str, raw: bytes, reason: str) -> None:
    with pytest.raises(DocumentError, match=None) as caught:
        parse_document(kind, f"bad{kind}", raw)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        (".md", b"\n\n---\ngroups: [hr]\n---\n# Pay\n\nBands.\n"),  # blank lines before the block
        (".txt", b"---\ngroups: [hr]\n---\nPay bands for 2026.\n"),
        (".html", b"---\ngroups: [hr]\n---\n<html><body><h1>Pay</h1><p>Bands.</p></body></html>"),
    ],
)
def test_front_matter_narrowing_is_honoured_wherever_it_is_written(kind: str, raw: bytes) -> None:
    doc = parse_document(kind, f"pay{kind}", raw)
    assert doc.front_matter_groups == ("hr",)
    assert all("groups:" not in s.text for s in doc.sections)


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        (".md", b"---\ngroups: [hr]\n...\n# Pay\n\nBands.\n"),  # YAML's own end-of-document marker
        (".md", b"+++\ntitle = 'Pay'\ngroups = ['hr']\n+++\n# Pay\n\nBands.\n"),  # Hugo's TOML block
        (".html", b"+++\ngroups = ['hr']\n+++\n<html><body><h1>Pay</h1><p>Bands.</p></body></html>"),
        (".txt", b"---\ngroups: [hr]\n...\nPay bands for 2026.\n"),
    ],
)
def test_front_matter_closed_by_dots_or_written_in_toml_narrows(kind: str, raw: bytes) -> None:
    """Both were dropped before, and the document went to its rule's wider groups."""
    doc = parse_document(kind, f"pay{kind}", raw)
    assert doc.front_matter_groups == ("hr",)
    assert all("groups" not in s.text for s in doc.sections)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"---\nGroups: [hr]\n---\n# Pay\n\nBands.\n", "key 'Groups' looks meant"),
        (b"---\ngroup: [hr]\n---\n# Pay\n\nBands.\n", "key 'group' looks meant"),
        (b"---\naccess: [hr]\n---\n# Pay\n\nBands.\n", "key 'access' looks meant"),
        (b"---\naudience: hr\n---\n# Pay\n\nBands.\n", "key 'audience' looks meant"),
        (b"---\ngruops: [hr]\n---\n# Pay\n\nBands.\n", "key 'gruops' looks meant"),
        (b"---\ngroups: [hr]\n# Pay\n\nBands.\n", "opened with '---' on line 1 is never closed"),
        (b"+++\ngroups = ['hr']\n# Pay\n", "opened with '+++' on line 1 is never closed"),
        (b"+++\ngroups = [hr\n+++\n# Pay\n", "TOML between '+++' lines) is not valid"),
        (b"<!-- draft -->\n---\ngroups: [hr]\n---\n# Pay\n\nBands.\n", "an HTML comment stands before"),
        (b"---\ngroups: " + b"[" * 5000 + b"]" * 5000 + b"\n---\n# Pay\n", "nested too deeply"),
    ],
)
def test_front_matter_that_only_looks_right_fails_the_document_closed(raw: bytes, reason: str) -> None:
    """Each of these was silently ignored: the document went to its rule's wider groups."""
    for kind in (".md", ".txt", ".html"):
        with pytest.raises(AccessRuleError) as caught:
            parse_document(kind, f"pay{kind}", raw)
        assert reason in str(caught.value)


def test_a_leading_horizontal_rule_is_not_front_matter() -> None:
    doc = parse_document(".md", "notes.md", b"---\n\n# Notes\n\nPlain text.\n")
    assert doc.front_matter_groups is None and "Plain text." in doc.sections[-1].text


def test_a_repeated_front_matter_key_is_refused() -> None:
    with pytest.raises(DocumentError, match="'groups' appears twice"):
        parse_document(".md", "pay.md", b"---\ngroups: [hr]\ngroups: [everyone]\n---\n# Pay\n\nBands.\n")


def test_pdf_text_has_no_control_characters() -> None:
    """pypdf gives the benefits PDF's bullets as U+007F: 21 boxes in one chunk, shown to users and embedded."""
    path = HANDBOOK / "company" / "benefits-overview.pdf"
    parsed = parse_document(".pdf", path.name, path.read_bytes())
    text = "\n".join(section.text for section in parsed.sections)
    assert "18 days per year in years 1-3" in text
    assert not [ch for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\n\t"]
    assert not [s for s in parsed.sections if "\n\n" in s.text]  # nor the empty lines the boxes stood on


def test_deeply_nested_html_is_refused_in_a_fraction_of_a_second() -> None:
    """A 2 MB page of nested <div>s held the index lock for tens of minutes (BeautifulSoup is quadratic in depth)."""
    raw = b"<div>" * 200_000 + b"text" + b"</div>" * 200_000
    with pytest.raises(DocumentError, match="HTML nested 200000 elements deep, over the 512"):
        parse_document(".html", "bomb.html", raw)
    flat = b"<ul>" + b"<li>item" * 5_000 + b"</ul><p>a<p>b"  # end tags HTML lets a page leave out do not count
    assert "item" in parse_document(".html", "list.html", flat).sections[0].text


def test_a_docx_is_refused_by_what_it_unpacks_to_before_it_is_unpacked() -> None:
    import io
    import zipfile

    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"<w:document>" + b" " * 150_000_000 + b"</w:document>")
    assert len(packed.getvalue()) < 1_000_000
    with pytest.raises(DocumentError, match="unpacks to 143 MB, over the 100 MB a DOCX may hold"):
        parse_document(".docx", "bomb.docx", packed.getvalue())
