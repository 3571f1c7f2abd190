"""Bytes of one document -> its title, its sections of text and its front matter.

PDF goes through llama-index's file reader (pypdf), fed from memory so that the bytes parsed are exactly the bytes
hashed; Markdown is cut at its headings by llama-index's MarkdownNodeParser; HTML is turned into Markdown-like text
(headings kept) with BeautifulSoup first, and DOCX with python-docx (headings, lists and tables kept). Every failure
is a `DocumentError` whose message says what is wrong with the file and what to do.
"""

from __future__ import annotations

import difflib
import io
import json
import re
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import yaml
from bs4 import BeautifulSoup
from fsspec.implementations.memory import MemoryFileSystem
from llama_index.core import Document
from llama_index.core.node_parser import MarkdownNodeParser

from assistant.errors import AccessRuleError, DocumentError

if TYPE_CHECKING:
    from docx.table import Table as DocxTable
    from docx.text.paragraph import Paragraph as DocxParagraph


@dataclass(frozen=True)
class Section:
    heading: str | None  # "Title > Section > Subsection", or "page 3", or None
    text: str


@dataclass(frozen=True)
class ParsedDocument:
    title: str
    sections: list[Section]
    front_matter_groups: tuple[str, ...] | None


# Front matter: a YAML block between `---` lines (closed by `---` or YAML's `...`), or a TOML block between `+++`
# lines (Hugo's), after blank lines if any. A block the reader skipped would drop its `groups:` narrowing, so what
# only looks like front matter (unclosed, after an HTML comment, a key that is a near miss of `groups`) fails the
# document instead: `AccessRuleError`, not indexed, an indexed version withdrawn.
_CLOSERS = {"---": ("---", "..."), "+++": ("+++",)}
_KEY_LINE = re.compile(r"^\s*[\"']?[A-Za-z_][\w -]*[\"']?\s*[:=]")  # `key:` (YAML) or `key =` (TOML)
_COMMENT = re.compile(r"\A\s*(?:<!--.*?-->\s*)+", re.DOTALL)
# Keys that mean "who may read this" elsewhere (other tools, a slip of the keyboard): never silently ignored.
_NEAR_GROUPS = {"group", "groups", "access", "audience", "audiences", "readers", "allowedgroups", "ssogroups", "acl"}


# A reader whose output changed since documents were indexed with it: part of those documents' content hash, so
# the next sync re-reads them (and only them). HTML v2: table rows as `| a | b |`, not glued cells. Front matter
# (v2 of Markdown and text, v3 of HTML): honoured after blank lines and in .txt/.html, a repeated key refused; an
# index built before could serve such documents to their rule's wider groups, so they are all read again. PDF v2:
# no control characters (pypdf gives a bullet glyph as U+007F: a box on every list line).
# Markdown and text v3, HTML v4: front matter closed by `...`, TOML `+++` blocks, and near misses of `groups` failing
# the document (an index built before served such documents to their rule's wider groups). DOCX v2: read with
# python-docx as Markdown (headings as sections, list items, table rows under their header row), not flat text.
_LIST_LINE = re.compile(r"^(?:- |1\. )")
_READER_VERSIONS = {".md": 3, ".markdown": 3, ".txt": 3, ".html": 4, ".htm": 4, ".pdf": 2, ".docx": 2}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_LINE = re.compile(r"\n[ \t]*[\x00-\x08\x0b-\x1f\x7f-\x9f][\x00-\x08\x0b-\x1f\x7f-\x9f \t]*(?=\n)")


# Bounds on what one file may cost to parse (one document must not hog a sync that holds the index lock).
# BeautifulSoup's work grows with the square of nesting depth (5,000 nested <div>s: 2 s; a 1 MB file of them: tens of
# minutes), and real pages nest a few dozen deep; a DOCX is a zip, and its XML is read whole into memory (a 0.4 MB
# file can hold a 400 MB document.xml). PDF streams are bounded by pypdf itself (75 MB decompressed per stream).
MAX_HTML_DEPTH = 512
MAX_UNPACKED_BYTES = 100 * 1024 * 1024
_TAG = re.compile(rb"<(/?)([A-Za-z][A-Za-z0-9:-]*)[^>]*>")
# Elements that never hold others, or whose end tag HTML lets a page leave out: not counted as nesting.
_FLAT_TAGS = {
    b"area",
    b"base",
    b"br",
    b"col",
    b"embed",
    b"hr",
    b"img",
    b"input",
    b"link",
    b"meta",
    b"param",
    b"source",
    b"track",
    b"wbr",
    b"p",
    b"li",
    b"dt",
    b"dd",
    b"tr",
    b"td",
    b"th",
    b"option",
    b"thead",
    b"tbody",
    b"tfoot",
}

_ROW_GAP = re.compile(r"^(\|.*\|)\n\n+(?=\|.*\|$)", re.MULTILINE)  # blank lines between two table rows


def reader_version(kind: str) -> str:
    """What the content hash adds for documents of `kind`: nothing for a reader still at its first version."""
    version = _READER_VERSIONS.get(kind, 1)
    return f"|reader{kind}=v{version}" if version > 1 else ""


def parse_document(kind: str, name: str, raw: bytes) -> ParsedDocument:
    """Parse `raw` as `kind` (a suffix like ".md", or "beir"); `name` is the file name, for titles."""
    stem = PurePosixPath(name).stem.replace("-", " ").replace("_", " ").strip().capitalize() or name
    if kind == "beir":
        parsed = _beir(raw)
    elif kind in (".md", ".markdown"):
        parsed = _markdown(_decode_text(raw), stem)
    elif kind == ".txt":
        meta, text = _front_matter(_decode_text(raw))
        title = str(meta.get("title") or "") or _first_line_title(text, stem)
        parsed = ParsedDocument(title, [Section(None, text)], _front_matter_groups(meta))
    elif kind in (".html", ".htm"):
        parsed = _html(raw, stem)
    elif kind == ".pdf":
        parsed = _pdf(raw, name, stem)
    elif kind == ".docx":
        parsed = _docx(raw, name, stem)
    else:
        raise DocumentError(f"unsupported file type {kind!r}")
    sections = [s for s in parsed.sections if s.text.strip()]
    if not sections:
        raise DocumentError("no text could be extracted (empty, or a scanned image without text); add text to it")
    return ParsedDocument(parsed.title, sections, parsed.front_matter_groups)


def _decode_text(raw: bytes) -> str:
    if b"\x00" in raw[:8192]:
        raise DocumentError("contains binary data (NUL bytes), not text; is the file extension right?")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); re-save it as UTF-8"
        ) from None


def _first_line_title(text: str, fallback: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line if len(line) <= 120 else fallback
    return fallback


def _beir(raw: bytes) -> ParsedDocument:
    record = json.loads(raw)
    return ParsedDocument(record["title"], [Section(None, record["text"])], None)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML tools disagree on which of two equal keys wins (`groups:` twice): refuse rather than guess."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        keys = [key.value for key, _ in node.value if isinstance(key, yaml.ScalarNode)]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise AccessRuleError(
                f"front matter key {repeated[0]!r} appears twice (line {node.start_mark.line + 2}); keep one"
            )
        return super().construct_mapping(node, deep=deep)


def _front_matter(text: str) -> tuple[dict[str, object], str]:
    """(front matter, the text after it) of a Markdown, text or HTML document; ({}, text) when it has none."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    opener = lines[start].rstrip() if start < len(lines) else ""
    if opener not in _CLOSERS:
        _refuse_hidden_block(text)
        return {}, text
    end = next((i for i in range(start + 1, len(lines)) if lines[i].rstrip() in _CLOSERS[opener]), None)
    if end is None:
        if opener == "---" and not _opens_mapping(lines[start + 1 :]):
            return {}, text  # a Markdown horizontal rule, not a block
        raise AccessRuleError(
            f"front matter opened with {opener!r} on line {start + 1} is never closed; close it with a {opener!r} "
            "line or remove it (not indexed until then: its groups cannot be decided)"
        )
    block = "".join(lines[start + 1 : end])
    data = _parse_block(block, opener)
    if not isinstance(data, dict):
        raise AccessRuleError("front matter must be a mapping such as 'title: ...' and 'groups: [...]'")
    _refuse_near_misses(data)
    return data, "".join(lines[end + 1 :])


def _parse_block(block: str, opener: str) -> object:
    """A front-matter block as data: YAML after `---`, TOML after `+++`; unreadable is an access error."""
    try:
        if opener == "+++":
            return tomllib.loads(block)
        return yaml.load(block, Loader=_UniqueKeyLoader) or {}
    except tomllib.TOMLDecodeError as exc:
        raise AccessRuleError(f"front matter (TOML between '+++' lines) is not valid: {exc}; fix it") from None
    except yaml.YAMLError as exc:
        line = exc.problem_mark.line + 2 if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark else "?"
        raise AccessRuleError(f"front matter line {line} is not valid YAML; fix it or remove the block") from None
    except RecursionError:
        raise AccessRuleError("front matter is nested too deeply to read; flatten it") from None


def _refuse_hidden_block(text: str) -> None:
    """A front-matter block behind a leading HTML comment is not front matter to any tool: refuse, not ignore."""
    comment = _COMMENT.match(text)
    if comment is None:
        return
    rest = text[comment.end() :].splitlines()
    if rest and rest[0].rstrip() in _CLOSERS and _opens_mapping(rest[1:]):
        raise AccessRuleError(
            f"an HTML comment stands before the {rest[0].rstrip()!r} front-matter block, so no tool reads it as front "
            "matter; move the comment below the block"
        )


def _opens_mapping(lines: list[str]) -> bool:
    """Whether the first non-blank line is a `key:` line: what tells front matter from a horizontal rule."""
    first = next((line for line in lines if line.strip()), "")
    return _KEY_LINE.match(first) is not None


def _refuse_near_misses(meta: dict[object, object]) -> None:
    for key in meta:
        name = re.sub(r"[\s_-]", "", str(key)).casefold()
        near = name in _NEAR_GROUPS or difflib.SequenceMatcher(None, name, "groups").ratio() >= 0.8
        if key != "groups" and near:
            raise AccessRuleError(
                f"front matter key {str(key)!r} looks meant to say who may read this document, but only 'groups' "
                "(lower case, plural) does; write groups: [...] or remove the key"
            )


def _front_matter_groups(meta: dict[str, object]) -> tuple[str, ...] | None:
    """The `groups:` a document narrows itself to, or None when it names none."""
    if "groups" not in meta:
        return None
    groups = meta["groups"]  # present but empty is an error, never "no narrowing"
    if not isinstance(groups, list) or not all(isinstance(g, str) and g.strip() for g in groups) or not groups:
        raise AccessRuleError("front matter 'groups' must be a non-empty list of group names, e.g. groups: [hr]")
    return tuple(g.strip() for g in groups)


def _markdown(text: str, stem: str) -> ParsedDocument:
    meta, body = _front_matter(text)
    parsed = _markdown_body(body, str(meta.get("title") or ""), stem)
    return ParsedDocument(parsed.title, parsed.sections, _front_matter_groups(meta))


def _markdown_body(body: str, title: str, stem: str) -> ParsedDocument:
    """Sections of Markdown text cut at its headings; `title` wins over the first `# ` heading."""
    nodes = MarkdownNodeParser().get_nodes_from_documents([Document(text=body)])
    sections: list[Section] = []
    for node in nodes:
        content = node.get_content()
        first = content.lstrip().split("\n", 1)[0]
        path = [p for p in str(node.metadata.get("header_path", "/")).split("/") if p]
        if first.startswith("#"):
            heading = first.lstrip("#").strip()
            if not title and first.startswith("# "):
                title = heading
            path.append(heading)
        sections.append(Section(" > ".join(path) or None, content))
    return ParsedDocument(title or _first_line_title(body, stem), sections, None)


def _html(raw: bytes, stem: str) -> ParsedDocument:
    if b"\x00" in raw[:8192]:
        raise DocumentError("contains binary data (NUL bytes), not HTML; is the file extension right?")
    meta: dict[str, object] = {}
    if raw.lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b"---", b"+++", b"<!--")):  # as static-site generators write
        meta, text = _front_matter(_decode_text(raw))
        raw = text.encode("utf-8")
    depth = _nesting_depth(raw)
    if depth > MAX_HTML_DEPTH:
        raise DocumentError(
            f"HTML nested {depth} elements deep, over the {MAX_HTML_DEPTH} this reader parses (real pages nest a few "
            "dozen); re-export the page or convert it to Markdown"
        )
    soup = BeautifulSoup(raw, "html.parser")
    for tag in soup(["script", "style", "nav", "noscript"]):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    if soup.title:
        soup.title.decompose()
    for tag in soup.find_all(re.compile(r"^h[1-6]$")):
        level = int(tag.name[1])
        tag.replace_with(f"\n\n{'#' * level} {tag.get_text(' ', strip=True)}\n\n")
    for row in reversed(soup.find_all("tr")):  # innermost first: a nested table becomes text of its cell
        # A table row as a Markdown row: cells glued together make words no question contains ("Assembly9850").
        cells = [c.get_text(" ", strip=True).replace("|", "\\|") for c in row.find_all(["td", "th"], recursive=False)]
        row.replace_with(f"\n| {' | '.join(cells)} |\n" if any(cells) else "\n")
    for tag in soup.find_all(["p", "li", "br", "div", "pre"]):
        tag.append("\n")
    text = re.sub(r"\n{3,}", "\n\n", soup.get_text())
    text = "\n".join(line.strip() for line in text.splitlines())
    text = _ROW_GAP.sub(r"\1\n", text)  # the rows of a table on consecutive lines
    parsed = _markdown_body(text.strip(), str(meta.get("title") or "") or title, stem)
    return ParsedDocument(parsed.title, parsed.sections, _front_matter_groups(meta))


def _nesting_depth(raw: bytes) -> int:
    """The deepest element nesting of an HTML page, by a linear scan of its tags (before any parser sees it)."""
    depth = deepest = 0
    for match in _TAG.finditer(raw):
        name = match.group(2).lower()
        if name in _FLAT_TAGS or match.group(0).endswith(b"/>"):
            continue
        depth = max(depth - 1, 0) if match.group(1) else depth + 1
        deepest = max(deepest, depth)
    return deepest


def _check_unpacked_size(raw: bytes, kind: str) -> None:
    """A zip-based document (DOCX) is refused by the size of what it unpacks to, before anything is unpacked."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a readable zip: the reader says what is wrong with it
    if unpacked > MAX_UNPACKED_BYTES:
        raise DocumentError(
            f"unpacks to {unpacked / 1_048_576:.0f} MB, over the {MAX_UNPACKED_BYTES / 1_048_576:.0f} MB a {kind} "
            "may hold (a compressed bomb, or a document to split); split it or save it without embedded files"
        )


def _in_memory(name: str, raw: bytes) -> tuple[MemoryFileSystem, PurePosixPath]:
    fs = MemoryFileSystem(skip_instance_cache=True)
    path = PurePosixPath("/doc") / PurePosixPath(name).name
    fs.pipe(str(path), raw)
    return fs, path


def _pdf(raw: bytes, name: str, stem: str) -> ParsedDocument:
    from llama_index.readers.file import PDFReader

    fs, path = _in_memory(name, raw)
    try:
        pages = PDFReader(return_full_document=False).load_data(path, fs=fs)
    except Exception as exc:  # pypdf raises many types for damaged files
        raise DocumentError(f"could not be read as PDF ({type(exc).__name__}: {exc}); re-export it") from None
    sections = [Section(f"page {p.metadata.get('page_label', i + 1)}", _printable(p.text)) for i, p in enumerate(pages)]
    first_text = next((s.text for s in sections if s.text.strip()), "")
    return ParsedDocument(_first_line_title(first_text, stem), sections, None)


def _printable(text: str) -> str:
    """PDF text without control characters (a bullet glyph comes out as U+007F), and without the empty lines they
    leave behind."""
    return _CONTROL.sub("", _CONTROL_LINE.sub("", text))


def _docx(raw: bytes, name: str, stem: str) -> ParsedDocument:
    """Word's structure as Markdown (python-docx reads it; docx2txt flattened it): headings cut sections, list
    paragraphs are list items, and a table is rows under its header row, so "New York ... $340" stays one line."""
    import docx
    from docx.table import Table

    _check_unpacked_size(raw, "DOCX")
    try:
        blocks = list(docx.Document(io.BytesIO(raw)).iter_inner_content())
        lines = [_docx_table(b) if isinstance(b, Table) else _docx_paragraph(b) for b in blocks]
    except Exception as exc:  # python-docx raises zipfile/KeyError/XML errors for damaged files
        raise DocumentError(f"could not be read as DOCX ({type(exc).__name__}: {exc}); re-save it in Word") from None
    text = ""
    for line in filter(None, lines):  # a list's items one per line, every other block after a blank line
        text += ("\n" if _LIST_LINE.match(line) and _LIST_LINE.match(text.rsplit("\n", 1)[-1]) else "\n\n") + line
    return _markdown_body(text.strip(), "", stem)


def _docx_paragraph(paragraph: DocxParagraph) -> str:
    text = " ".join(paragraph.text.split())
    style = (paragraph.style.name if paragraph.style is not None else "") or ""
    level = re.fullmatch(r"Heading ([1-6])", style)
    if text and (level or style == "Title"):
        return f"{'#' * (int(level.group(1)) if level else 1)} {text}"
    if text and style.startswith("List Number"):
        return f"1. {text}"
    if text and style.startswith("List"):
        return f"- {text}"
    return text


def _docx_table(table: DocxTable) -> str:
    """A Markdown table: the first row its header (with the separator row that says so), one line per row."""
    rows = [
        "| " + " | ".join(" ".join(cell.text.split()).replace("|", "\\|") for cell in row.cells) + " |"
        for row in table.rows
    ]
    rows = [row for row in rows if row.strip("| ")]
    if len(rows) > 1:
        rows.insert(1, "|" + "---|" * len(table.rows[0].cells))
    return "\n".join(rows)
