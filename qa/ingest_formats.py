"""Word, PowerPoint, EPUB and CSV files as :class:`~qa.ingest.Part` pieces, cleaned by ``qa.ingest``.

- ``.docx`` (python-docx): paragraphs and tables in document order; each heading (a "Heading n" or
  "Title" style) opens a section; list items become ``- `` lines and table rows ``| a | b |`` lines.
- ``.pptx`` (python-pptx): a page per slide, titled by the slide's title; text boxes, tables, grouped
  shapes and the speaker notes, in the slide's order.
- ``.epub`` (ebooklib): a page per chapter of the reading order, titled by its first heading; the
  chapter's XHTML goes through the same HTML reader as ``.html`` files.
- ``.csv`` (the standard library): the first row names the columns; every other row is one line,
  ``Name: value; Other: value``, so that each passage says what its numbers are.

Damaged files raise whatever their parser raises; ``qa.ingest`` turns that into an ``IngestError``
naming the file.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from qa.ingest import IngestError, Parsed, Part, _html_to_text, join_parts

_CSV_DELIMITERS = ",;\t|"
_CSV_SAMPLE = 64 * 1024


def read_package(suffix: str, data: bytes, path: Path) -> Parsed:
    """A ``.docx``, ``.pptx`` or ``.epub`` file's text, pages and sections."""
    readers: dict[str, Callable[[bytes, Path], Parsed]] = {".docx": read_docx, ".pptx": read_pptx, ".epub": read_epub}
    return readers[suffix](data, path)


# --------------------------------------------------------------------------- docx


def _docx_blocks(document: Any) -> Iterator[tuple[str, bool]]:
    """``(text, is_heading)`` for each paragraph and table of the body, in order."""
    from docx.table import Table

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            yield _table_text(_docx_rows(block)), False
            continue
        style = (block.style.name if block.style is not None else "") or ""
        text = block.text
        if style.startswith("List") and text.strip():
            text = f"- {text}"
        yield text, style == "Title" or style.startswith("Heading")


def _docx_rows(table: Any) -> Iterator[list[str]]:
    """Each row's cell texts; a merged cell (the same cell repeated by python-docx) counts once."""
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if cell._tc is not previous:
                cells.append(" ".join(cell.text.split()))
            previous = cell._tc
        yield cells


def _table_text(rows: Iterator[list[str]]) -> str:
    """A table as ``| a | b |`` lines, which cleaning keeps one per line."""
    return "\n".join(f"| {' | '.join(cells)} |" for cells in rows if any(cells))


def read_docx(data: bytes, path: Path) -> Parsed:
    """A section per heading; the title is the document's title property, else its first heading."""
    import docx

    document = docx.Document(io.BytesIO(data))
    parts: list[Part] = []
    heading: str | None = None
    body: list[str] = []
    first_heading: str | None = None
    for text, is_heading in _docx_blocks(document):
        if is_heading and text.strip():
            parts.append(Part("\n\n".join(body), heading=heading))
            heading, body = text, [text]
            first_heading = first_heading or " ".join(text.split())
        elif text.strip():
            body.append(text)
    parts.append(Part("\n\n".join(body), heading=heading))
    title = (document.core_properties.title or "").strip() or first_heading
    return join_parts(parts, title=title)


# --------------------------------------------------------------------------- pptx


def _shape_texts(shapes: Any, skip: Any = None) -> Iterator[str]:
    """The text of each shape in order: paragraphs of text frames, table rows, grouped shapes."""
    for shape in shapes:
        if skip is not None and shape.shape_id == skip:
            continue
        if getattr(shape, "shapes", None) is not None:  # a group
            yield from _shape_texts(shape.shapes)
        elif getattr(shape, "has_table", False) and shape.has_table:
            rows = ([" ".join(cell.text.split()) for cell in row.cells] for row in shape.table.rows)
            yield _table_text(rows)
        elif shape.has_text_frame:
            yield from (paragraph.text for paragraph in shape.text_frame.paragraphs)


def read_pptx(data: bytes, path: Path) -> Parsed:
    """A page per slide (its number is the slide's), a section per slide title."""
    import pptx

    presentation = pptx.Presentation(io.BytesIO(data))
    parts: list[Part] = []
    for number, slide in enumerate(presentation.slides, start=1):
        title_shape = slide.shapes.title
        title = title_shape.text_frame.text if title_shape is not None and title_shape.has_text_frame else ""
        texts = [title, *_shape_texts(slide.shapes, title_shape.shape_id if title_shape is not None else None)]
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            texts.append(slide.notes_slide.notes_text_frame.text)
        raw = "\n\n".join(text for text in texts if text.strip())
        parts.append(Part(raw, number=number, heading=title.strip() or None))
    first_title = next((part.heading for part in parts if part.heading), None)
    title = (presentation.core_properties.title or "").strip() or first_title
    return join_parts(parts, title=" ".join(title.split()) if title else None)


# --------------------------------------------------------------------------- epub


def _first_heading(markup: str) -> str | None:
    from bs4 import BeautifulSoup

    tag = BeautifulSoup(markup, "html.parser").find(["h1", "h2", "h3"])
    heading = " ".join(tag.get_text(" ").split()) if tag is not None else ""
    return heading or None


def read_epub(data: bytes, path: Path) -> Parsed:
    """A page per chapter of the reading order (the spine), a section per chapter heading."""
    import ebooklib
    from ebooklib import epub

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ebooklib's notices about its future defaults
        book = epub.read_epub(io.BytesIO(data), {"ignore_ncx": True})
    parts: list[Part] = []
    number = 0
    for idref, *_linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT or isinstance(item, epub.EpubNav):
            continue
        number += 1
        markup = item.get_content().decode("utf-8", errors="replace")
        text, page_title = _html_to_text(markup)
        parts.append(Part(text, number=number, heading=_first_heading(markup) or page_title))
    if not parts:
        raise IngestError(f"{path}: the EPUB has no chapters in its reading order")
    titles = book.get_metadata("DC", "title")
    title = " ".join(str(titles[0][0]).split()) if titles and titles[0][0] else None
    return join_parts(parts, title=title)


# --------------------------------------------------------------------------- csv


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(text[:_CSV_SAMPLE], delimiters=_CSV_DELIMITERS)
    except csv.Error:  # one column, or too little to tell
        return csv.excel


def read_csv(text: str, path: Path) -> Parsed:
    """One line per row, ``Column: value; …`` (the first row names the columns); the title is the file name."""
    try:
        rows = list(csv.reader(io.StringIO(text), _dialect(text)))
    except csv.Error as exc:
        raise IngestError(f"{path}: cannot parse CSV: {exc}") from exc
    rows = [[" ".join(cell.split()) for cell in row] for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        return Parsed("", title=path.stem)
    header, *records = rows
    names = [name or f"Column {i}" for i, name in enumerate(header, start=1)]
    if not records:  # a single row: nothing names its cells
        return join_parts([Part("; ".join(header))], title=path.stem)
    parts = (Part(_csv_line(names, record)) for record in records)
    return join_parts(parts, separator="\n", title=path.stem)


def _csv_line(names: list[str], record: list[str]) -> str:
    """``Name: value; …`` for the filled cells; cells beyond the header are named by their column number."""
    pairs = []
    for i, value in enumerate(record):
        if value:
            name = names[i] if i < len(names) else f"Column {i + 1}"
            pairs.append(f"{name}: {value}")
    return "; ".join(pairs)
