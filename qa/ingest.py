"""Find source files and turn them into cleaned :class:`~qa.types.Document` records.

Plain text and Markdown are decoded (UTF-8, else detected), HTML is parsed with BeautifulSoup,
PDF pages are extracted with pypdf and cleaned one by one so that page offsets stay exact. Word
(``.docx``), PowerPoint (``.pptx``), EPUB and CSV files are read by ``qa.ingest_formats`` into the
same :class:`Part` pieces: a section per heading, a page per slide or chapter, a line per CSV row.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.cleaning import clean_text, sections_from_headings
from qa.types import Document, Page, Section

log = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    ".csv", ".docx", ".epub", ".htm", ".html", ".md", ".pdf", ".pptx", ".txt",
)  # fmt: skip
_BINARY_FORMATS = {".docx": "DOCX", ".epub": "EPUB", ".pptx": "PPTX"}  # zip packages, read by qa.ingest_formats
_UNPRINTABLE = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\ufffd]")
"""Control characters that are not whitespace, and U+FFFD (what a failed decode leaves); one regex
pass instead of a per-character loop (3 s on 16 MB)."""
_MAX_UNPRINTABLE = 0.1  # share of control/replacement characters above which text "looks binary"
_CP1252_TOLERANCE = 0.15  # extra "chaos" accepted to prefer windows-1252, as browsers do
_TITLE_MAX_WORDS = 20
_TITLE_SEARCH_PARAGRAPHS = 5

_DROPPED_HTML = ["script", "style", "noscript", "nav", "footer", "head", "template", "svg", "iframe"]
_BLOCK_HTML = [
    "address", "article", "aside", "blockquote", "caption", "dd", "details", "div", "dl", "dt",
    "figcaption", "figure", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "main",
    "ol", "p", "pre", "section", "summary", "table", "ul",
]  # fmt: skip
_MARKDOWN_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"<!--.*?-->", re.DOTALL), ""),
    (re.compile(r"^ {0,3}(?:```|~~~).*$", re.MULTILINE), ""),
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),
    (re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE), r"\1"),
    (re.compile(r"^ {0,3}> ?", re.MULTILINE), ""),
    (re.compile(r"^([ \t]*)[*+][ \t]+", re.MULTILINE), r"\1- "),
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), r"\1"),
    (re.compile(r"`([^`\n]+)`"), r"\1"),
]


class IngestError(Exception):
    """A file that cannot be turned into a document; the message says which and why."""


class MissingPathError(IngestError, FileNotFoundError):
    """A path given to ingest does not exist."""


@dataclass(frozen=True)
class Part:
    """A piece of a source cleaned on its own: a PDF page, a slide, a chapter, a DOCX section, a CSV row.

    ``number`` makes the piece a page (PDF page, slide, chapter). ``heading`` opens a section at its
    start (a DOCX heading, a slide's or a chapter's title); without one, the headings that cleaning
    finds inside the piece are used.
    """

    raw: str
    number: int | None = None
    heading: str | None = None


@dataclass(frozen=True)
class Parsed:
    """A file's cleaned text with its pages, sections and title (``None``: taken from the text)."""

    text: str
    pages: tuple[Page, ...] = ()
    sections: tuple[Section, ...] = ()
    title: str | None = None


@dataclass(frozen=True)
class Skipped:
    """A file that ``load_documents`` left out, and why."""

    path: str
    reason: str


def doc_id_for(path: Path, root: Path) -> str:
    """Stable id: the posix path of ``path`` relative to ``root`` (its file name if outside it)."""
    try:
        relative = Path(path).relative_to(root)
    except ValueError:
        relative = Path(Path(path).name)
    return relative.as_posix() if relative.parts else Path(path).name


def discover(paths: Sequence[Path | str]) -> list[tuple[Path, Path]]:
    """List ``(file, root)`` pairs: a file stands for itself, a folder for its non-hidden files."""
    found: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        if path.is_file():
            candidates = [(path, path.parent)]
        elif path.is_dir():
            candidates = [
                (file, path)
                for file in sorted(path.rglob("*"))
                if file.is_file() and not any(part.startswith(".") for part in file.relative_to(path).parts)
            ]
        else:
            raise MissingPathError(f"No such file or folder: {path}")
        for file, root in candidates:
            if file.resolve() not in seen:
                seen.add(file.resolve())
                found.append((file, root))
    return found


def load_documents(paths: Sequence[Path | str]) -> tuple[list[Document], list[Skipped]]:
    """Load every supported file under ``paths``; bad files are returned as skipped, not raised."""
    documents: list[Document] = []
    skipped: list[Skipped] = []
    sources: dict[str, str] = {}
    for path, root in discover(paths):
        try:
            doc = load_document(path, root)
        except IngestError as exc:
            skipped.append(Skipped(str(path), str(exc)))
            continue
        except Exception as exc:  # a parser bug on one odd file must not stop the others
            skipped.append(Skipped(str(path), f"{path}: unexpected {type(exc).__name__}: {exc}"))
            continue
        if doc.id in sources:
            skipped.append(Skipped(str(path), f"{path}: same document id {doc.id!r} as {sources[doc.id]}"))
            continue
        sources[doc.id] = doc.source
        documents.append(doc)
    return documents, skipped


def load_document(path: Path, root: Path) -> Document:
    """Read, parse and clean one file; raises :class:`IngestError` with a clear message."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        kind = f"'{suffix}'" if suffix else "(no extension)"
        raise IngestError(f"{path}: unsupported file type {kind}; supported: {', '.join(SUPPORTED_EXTENSIONS)}")
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise MissingPathError(f"No such file: {path}") from exc
    except OSError as exc:
        raise IngestError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if not data.strip():
        raise IngestError(f"{path} is empty")
    parsed = _parse(suffix, data, path)
    if not parsed.text:
        raise IngestError(f"{path}: no text left after cleaning")
    return Document(
        id=doc_id_for(path, root),
        title=parsed.title or _title_from_text(parsed.text) or path.stem,
        text=parsed.text,
        source=str(Path(path).resolve()),  # absolute: the same file from any working directory
        content_hash=hashlib.sha256(data).hexdigest(),
        pages=parsed.pages,
        sections=parsed.sections,
    )


def _parse(suffix: str, data: bytes, path: Path) -> Parsed:
    """The file's cleaned text, pages, sections and title, by its type."""
    if suffix == ".pdf":
        return _read_pdf(data, path)
    if suffix in _BINARY_FORMATS:
        from qa.ingest_formats import read_package

        try:
            return read_package(suffix, data, path)
        except IngestError:
            raise
        except Exception as exc:  # zipfile, lxml and the parsers raise many types for damaged files
            kind, detail = _BINARY_FORMATS[suffix], getattr(exc, "msg", None) or exc  # ebooklib keeps it in .msg
            raise IngestError(f"{path}: cannot parse {kind} (is the file damaged?): {detail}") from exc
    raw = _decode(data, path)
    if suffix == ".csv":
        from qa.ingest_formats import read_csv

        return read_csv(raw, path)
    title = None
    if suffix in (".html", ".htm"):
        raw, title = _html_to_text(raw)
    elif suffix == ".md":
        raw = _markdown_to_text(raw)
    cleaned = clean_text(raw)
    return Parsed(cleaned.text, (), cleaned.sections, title)


def join_parts(parts: Iterable[Part], *, separator: str = "\n\n", title: str | None = None) -> Parsed:
    """Clean each part on its own and join them with ``separator``, keeping offsets exact:
    ``text[page.start:page.end]`` is a numbered part's cleaned text, and a part's heading opens a
    section there (sections run on to the next heading, across parts). Empty parts are left out."""
    texts: list[str] = []
    pages: list[Page] = []
    headings: list[tuple[str, int]] = []
    offset = 0
    for part in parts:
        cleaned = clean_text(part.raw)
        if not cleaned.text:
            continue
        if texts:
            offset += len(separator)
        if part.number is not None:
            pages.append(Page(part.number, offset, offset + len(cleaned.text)))
        heading = " ".join(clean_text(part.heading).text.split()) if part.heading else ""
        if heading:
            headings.append((heading, offset))
        else:
            headings += [(section.heading, section.start + offset) for section in cleaned.sections]
        texts.append(cleaned.text)
        offset += len(cleaned.text)
    return Parsed(separator.join(texts), tuple(pages), sections_from_headings(headings, offset), title)


def _decode(data: bytes, path: Path) -> str:
    """Bytes to text: BOMs, then UTF-8, then charset detection; refuses binary and empty files."""
    boms = [(codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig")]
    boms += [(codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")]
    text = next((_try_decode(data, codec) for bom, codec in boms if data.startswith(bom)), None)
    if text is None:
        if b"\x00" in data:
            raise IngestError(f"{path} looks binary (it contains NUL bytes), not like {path.suffix} text")
        text = _try_decode(data, "utf-8")
        if text is None:
            text = _detect(data, path)
    if not text.strip():
        raise IngestError(f"{path} is empty")
    unprintable = len(_UNPRINTABLE.findall(text))
    if unprintable > _MAX_UNPRINTABLE * len(text):
        raise IngestError(f"{path} looks binary (mostly non-printable characters), not like {path.suffix} text")
    return text


def _try_decode(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        return None


def _detect(data: bytes, path: Path) -> str:
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        raise IngestError(f"{path} looks binary (no text encoding fits), not like {path.suffix} text")
    for match in matches:
        if match.encoding == "cp1252" and match.chaos <= best.chaos + _CP1252_TOLERANCE:
            return str(match)
    return str(best)


def _html_to_text(markup: str) -> tuple[str, str | None]:
    """Visible text of an HTML page, one paragraph per block element, and its ``<title>``."""
    from bs4 import BeautifulSoup, NavigableString
    from bs4.element import PreformattedString

    soup = BeautifulSoup(markup, "html.parser")
    title_tag = soup.title or soup.find("h1")
    title = " ".join(title_tag.get_text(" ").split()) if title_tag else None
    for tag in soup.find_all(_DROPPED_HTML):
        tag.decompose()
    for tag in soup.find_all(_is_hidden):  # not shown by a browser, so not a source either
        if not tag.decomposed:
            tag.decompose()
    for string in soup.find_all(string=True):
        if isinstance(string, PreformattedString):  # comments, doctype, processing instructions
            string.extract()
        elif string.find_parent("pre") is None:
            string.replace_with(NavigableString(re.sub(r"\s+", " ", string)))
    for tag in soup.find_all("br"):
        tag.replace_with("\n")
    for tag in soup.find_all(["li", "tr"]):  # one line each, in the paragraph of their list or table
        tag.insert_before("\n- " if tag.name == "li" else "\n")
    for tag in soup.find_all(["td", "th"]):
        tag.insert_after(" ")
    for tag in soup.find_all(_BLOCK_HTML):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    return soup.get_text(), title or None


_ZERO = re.compile(r"0*\.?0*(?:[a-z]+|%)?")  # "0", "0px", "0.0em", "0%"


def _hides(declaration: str) -> bool:
    """One inline CSS declaration that hides its element (``display:none``, ``font-size:0``, ...)."""
    name, _, value = declaration.partition(":")
    name, value = name.strip().lower(), value.lower().replace("!important", "").strip()
    if name == "display":
        return value == "none"
    if name == "visibility":
        return value in ("hidden", "collapse")
    if name in ("font-size", "opacity"):
        return bool(value) and _ZERO.fullmatch(value) is not None
    return False


def _is_hidden(tag: Any) -> bool:
    """An element a browser does not show, or hides from assistive technology: ``hidden``,
    ``aria-hidden="true"``, or an inline style with ``display:none``, ``visibility:hidden``,
    ``font-size:0`` or ``opacity:0``. (Stylesheet rules are not evaluated.)"""
    attrs = getattr(tag, "attrs", None) or {}
    if "hidden" in attrs or str(attrs.get("aria-hidden", "")).strip().lower() == "true":
        return True
    return any(_hides(d) for d in str(attrs.get("style", "")).split(";"))


def _markdown_to_text(markdown: str) -> str:
    """Drop Markdown syntax (heading marks, links, emphasis, fences), keeping the words."""
    for pattern, replacement in _MARKDOWN_RULES:
        markdown = pattern.sub(replacement, markdown)
    return markdown


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _pdf_warnings_named(path: Path) -> Iterator[None]:
    """pypdf's warnings about a damaged file ("incorrect startxref pointer") re-logged with the file's name."""
    pypdf_log = logging.getLogger("pypdf")
    collect, propagate = _Collect(), pypdf_log.propagate
    pypdf_log.addHandler(collect)
    pypdf_log.propagate = False
    try:
        yield
    finally:
        pypdf_log.removeHandler(collect)
        pypdf_log.propagate = propagate
        for message in dict.fromkeys(collect.messages):
            log.warning("%s: %s", path, message)


def _read_pdf(data: bytes, path: Path) -> Parsed:
    """Clean each page separately and join them with a blank line, recording each page's span."""
    from pypdf import PdfReader

    try:
        with _pdf_warnings_named(path):
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise IngestError(f"{path}: the PDF is encrypted")
            raw_pages = [page.extract_text() or "" for page in reader.pages]
            title = reader.metadata.title if reader.metadata else None
    except IngestError:
        raise
    except Exception as exc:  # pypdf raises many exception types for damaged files
        raise IngestError(f"{path}: cannot parse PDF: {exc}") from exc
    parts = (Part(raw, number=number) for number, raw in enumerate(raw_pages, start=1))
    parsed = join_parts(parts, title=(title or "").strip() or None)  # a section runs on across page breaks
    if not parsed.text:
        raise IngestError(f"{path}: the PDF has no extractable text (is it scanned images?)")
    return parsed


def _title_from_text(text: str) -> str | None:
    """The first short one-line paragraph near the top, if any."""
    for paragraph in text.split("\n\n")[:_TITLE_SEARCH_PARAGRAPHS]:
        if "\n" not in paragraph and len(paragraph.split()) <= _TITLE_MAX_WORDS and paragraph[-1] not in ".,;:":
            return paragraph
    return None
