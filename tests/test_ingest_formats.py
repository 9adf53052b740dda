"""Word, PowerPoint, EPUB and CSV files, each made in the test by its writer library, read by qa.ingest:
the exact text, the offsets of pages and sections, the title, and an answer cited from them."""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from fakes import ScriptedGenerator

from qa.chunking import chunk_document
from qa.embedding import HashingEmbedder
from qa.generation import Messages
from qa.index import build_index
from qa.ingest import IngestError, load_document, load_documents
from qa.pipeline import Assistant
from qa.settings import load_settings
from qa.types import Document

LIGHTHOUSE = "The Kestrel Point lighthouse was built in 1874 by the engineer Mirabel Okafor."
LAMP = "Its lamp is visible from thirty kilometres away."


def make_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.core_properties.title = "Harbour Notes"
    document.add_paragraph("Prepared for the harbour board.")
    document.add_heading("History", level=1)
    document.add_paragraph(LIGHTHOUSE)
    document.add_paragraph("Granite from the north quarry", style="List Bullet")
    document.add_heading("The Lamp", level=2)
    document.add_paragraph(LAMP)
    table = document.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, (("Year", "Event"), ("1874", "First light")), strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    document.save(str(path))
    return path


def make_pptx(path: Path) -> Path:
    import pptx
    from pptx.util import Inches

    presentation = pptx.Presentation()
    first = presentation.slides.add_slide(presentation.slide_layouts[1])  # title and content
    first.shapes.title.text = "Kestrel Point"
    first.placeholders[1].text_frame.text = LIGHTHOUSE
    first.notes_slide.notes_text_frame.text = "Mention the granite."
    second = presentation.slides.add_slide(presentation.slide_layouts[5])  # title only
    second.shapes.title.text = "The Lamp"
    box = second.shapes.add_textbox(Inches(1), Inches(2), Inches(6), Inches(1))
    box.text_frame.text = LAMP
    table = second.shapes.add_table(2, 2, Inches(1), Inches(4), Inches(6), Inches(1)).table
    for r, cells in enumerate((("Range", "Colour"), ("30 km", "White"))):
        for c, text in enumerate(cells):
            table.cell(r, c).text = text
    blank = presentation.slides.add_slide(presentation.slide_layouts[6])  # no title, no text: no page
    blank.shapes.add_textbox(Inches(1), Inches(1), Inches(2), Inches(1))
    presentation.save(str(path))
    return path


def make_epub(path: Path, chapters: list[tuple[str, str]] | None = None) -> Path:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("kestrel-1")
    book.set_title("The Kestrel Point Story")
    book.set_language("en")
    items = []
    for i, (heading, body) in enumerate(chapters or [("The Builder", LIGHTHOUSE), ("The Lamp", LAMP)], start=1):
        item = epub.EpubHtml(title=f"Chapter {i}", file_name=f"c{i}.xhtml", lang="en")
        item.content = f"<h1>{heading}</h1><p>{body}</p>"
        book.add_item(item)
        items.append(item)
    book.toc = tuple(items)
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        epub.write_epub(str(path), book)
    return path


def make_csv(path: Path) -> Path:
    path.write_text(
        "Lighthouse;Built;Engineer\nKestrel Point;1874;Mirabel Okafor\nGull Rock;1902;\n;;\n", encoding="utf-8"
    )
    return path


def assert_offsets(doc: Document) -> None:
    """Pages and sections are spans of the text, in order; every chunk is a span too."""
    for span in (*doc.pages, *doc.sections):
        assert 0 <= span.start < span.end <= len(doc.text)
    for section in doc.sections:
        assert doc.text[section.start : section.end].startswith(section.heading)
    for chunk in chunk_document(doc, target_words=20, overlap_words=0):
        assert doc.text[chunk.start : chunk.end] == chunk.text


# --------------------------------------------------------------------------- each format


def test_docx_has_a_section_per_heading_with_lists_and_tables(tmp_path: Path) -> None:
    doc = load_document(make_docx(tmp_path / "harbour.docx"), tmp_path)
    assert doc.id == "harbour.docx" and doc.title == "Harbour Notes"
    assert doc.text == (
        "Prepared for the harbour board.\n\n"
        f"History\n\n{LIGHTHOUSE}\n\n- Granite from the north quarry\n\n"
        f"The Lamp\n\n{LAMP}\n\n| Year | Event |\n| 1874 | First light |"
    )
    assert [s.heading for s in doc.sections] == ["History", "The Lamp"]
    history, lamp = doc.sections
    assert doc.text[history.start : history.end] == f"History\n\n{LIGHTHOUSE}\n\n- Granite from the north quarry\n\n"
    assert doc.text[lamp.start : lamp.end] == f"The Lamp\n\n{LAMP}\n\n| Year | Event |\n| 1874 | First light |"
    assert doc.section_at(doc.text.index("thirty")) == "The Lamp" and doc.pages == ()
    assert_offsets(doc)


def test_docx_without_a_title_property_is_titled_by_its_first_heading(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Kestrel Point Survey", level=0)
    document.add_paragraph(LIGHTHOUSE)
    document.save(str(tmp_path / "survey.docx"))
    doc = load_document(tmp_path / "survey.docx", tmp_path)
    assert doc.title == "Kestrel Point Survey"
    assert doc.text == f"Kestrel Point Survey\n\n{LIGHTHOUSE}"
    assert [(s.heading, s.start, s.end) for s in doc.sections] == [("Kestrel Point Survey", 0, len(doc.text))]


def test_pptx_has_a_page_per_slide_titled_by_the_slide(tmp_path: Path) -> None:
    doc = load_document(make_pptx(tmp_path / "deck.pptx"), tmp_path)
    assert doc.title == "Kestrel Point"
    first, second = doc.pages
    assert (first.number, second.number) == (1, 2)  # the empty third slide gives no page
    assert doc.text[first.start : first.end] == f"Kestrel Point\n\n{LIGHTHOUSE}\n\nMention the granite."
    assert doc.text[second.start : second.end] == f"The Lamp\n\n{LAMP}\n\n| Range | Colour |\n| 30 km | White |"
    assert doc.text[first.end : second.start] == "\n\n"
    assert [(s.heading, s.start) for s in doc.sections] == [("Kestrel Point", 0), ("The Lamp", second.start)]
    assert doc.page_at(doc.text.index("thirty")) == 2
    chunks = chunk_document(doc, target_words=20, overlap_words=0)
    assert {(c.page, c.section) for c in chunks} == {(1, "Kestrel Point"), (2, "The Lamp")}
    assert_offsets(doc)


def test_epub_has_a_page_per_chapter_in_reading_order(tmp_path: Path) -> None:
    doc = load_document(make_epub(tmp_path / "story.epub"), tmp_path)
    assert doc.title == "The Kestrel Point Story"
    assert doc.text == f"The Builder\n\n{LIGHTHOUSE}\n\nThe Lamp\n\n{LAMP}"
    assert [(p.number, doc.text[p.start : p.end]) for p in doc.pages] == [
        (1, f"The Builder\n\n{LIGHTHOUSE}"),
        (2, f"The Lamp\n\n{LAMP}"),
    ]  # the navigation document is not a chapter
    assert [s.heading for s in doc.sections] == ["The Builder", "The Lamp"]
    assert_offsets(doc)


def test_csv_rows_become_lines_naming_their_columns(tmp_path: Path) -> None:
    doc = load_document(make_csv(tmp_path / "lights.csv"), tmp_path)
    assert doc.title == "lights"
    assert doc.text == (
        "Lighthouse: Kestrel Point; Built: 1874; Engineer: Mirabel Okafor\nLighthouse: Gull Rock; Built: 1902"
    )
    comma = tmp_path / "comma.csv"
    comma.write_text('name,note\nalpha,"one, two"\n', encoding="utf-8")
    assert load_document(comma, tmp_path).text == "name: alpha; note: one, two"
    header_only = tmp_path / "header.csv"
    header_only.write_text("Just,a,header\n", encoding="utf-8")
    assert load_document(header_only, tmp_path).text == "Just; a; header"
    assert_offsets(doc)


# --------------------------------------------------------------------------- damaged files


def _zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


@pytest.mark.parametrize(
    ("name", "make", "kind"),
    [
        ("garbage.docx", lambda p: p.write_bytes(b"PK\x03\x04 not really a zip"), "DOCX"),
        ("empty-zip.pptx", lambda p: _zip(p, {"hello.txt": "hi"}), "PPTX"),
        ("not-a-book.epub", lambda p: _zip(p, {"mimetype": "application/epub+zip"}), "EPUB"),
        ("text.docx", lambda p: p.write_text("just some text", encoding="utf-8"), "DOCX"),
    ],
)
def test_a_damaged_file_is_an_ingest_error_naming_it(
    tmp_path: Path, name: str, make: Callable[[Path], object], kind: str
) -> None:
    path = tmp_path / name
    make(path)
    with pytest.raises(IngestError, match=f"cannot parse {kind}") as caught:
        load_document(path, tmp_path)
    assert str(caught.value).startswith(f"{path}: cannot parse {kind} (is the file damaged?): ")
    docs, skipped = load_documents([path])
    assert docs == [] and [s.path for s in skipped] == [str(path)]


def test_a_docx_saved_as_pptx_is_refused_by_name(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "harbour.docx").rename(tmp_path / "harbour.pptx")
    with pytest.raises(IngestError, match=r"harbour\.pptx: cannot parse PPTX"):
        load_document(path, tmp_path)


def test_a_book_without_chapters_says_so(tmp_path: Path) -> None:
    path = make_epub(tmp_path / "empty.epub", chapters=[("Only a heading", "")])
    assert load_document(path, tmp_path).text == "Only a heading"
    blank = make_epub(tmp_path / "blank.epub", chapters=[("", "")])
    with pytest.raises(IngestError, match="no text left after cleaning"):
        load_document(blank, tmp_path)


# --------------------------------------------------------------------------- indexed and answerable


def _cites(needle: str) -> Callable[[Messages], str]:
    """A generator reply that quotes the prompt's passage holding ``needle``, cited by its number."""

    def reply(messages: Messages) -> str:
        for line in messages[-1]["content"].splitlines():
            if needle in line and line.startswith("["):
                return f"{needle} [{line[1 : line.index(']')]}]."
        return "NOT FOUND"

    return reply


@pytest.mark.parametrize(
    ("name", "make"),
    [("harbour.docx", make_docx), ("deck.pptx", make_pptx), ("story.epub", make_epub), ("lights.csv", make_csv)],
)
def test_each_format_is_indexed_and_answered_with_an_exact_citation(
    tmp_path: Path, name: str, make: Callable[[Path], Path]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    make(docs / name)
    (docs / "other.txt").write_text("Other Notes\n\nBeta blockers lower the heart rate.\n", encoding="utf-8")
    settings = load_settings(
        environ={},
        paths={"index": tmp_path / "index", "seeds": docs, "cache": tmp_path / "cache"},
        embedding={"model": "hashing-64"},
        retrieval={"min_dense_score": 0.05},
    )
    embedder = HashingEmbedder(64)
    report = build_index([docs], settings, embedder, progress=False)
    assert report.added == sorted([name, "other.txt"]) and report.skipped == []
    assistant = Assistant(settings, embedder=embedder, generator=ScriptedGenerator(_cites("Mirabel Okafor")))
    answer = assistant.ask("Which engineer built the Kestrel Point lighthouse?")
    assert not answer.refused, answer.refusal_reason
    (citation,) = answer.citations
    assert citation.doc_id == name
    document = assistant.index.get_document(name)
    assert document.text[citation.start : citation.end] == citation.quote
    assert "Mirabel Okafor" in citation.quote
