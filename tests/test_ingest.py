"""Tests for qa.ingest: discovery, decoding, HTML/Markdown/PDF parsing and skipped files."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from qa.chunking import chunk_document, split_sentences
from qa.ingest import (
    SUPPORTED_EXTENSIONS,
    IngestError,
    MissingPathError,
    discover,
    doc_id_for,
    load_document,
    load_documents,
)

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "seeds" / "innocare-mesutoclax-btd.txt"
TOPIC_DOCS = ROOT / "eval" / "corpora" / "topic"
BODY = "The committee reviewed the safety data from all three trials before making its decision."


def minimal_pdf(pages: list[list[str]], title: str = "") -> bytes:
    """A valid PDF (Helvetica text, one line per string) built by hand with exact xref offsets."""
    font = 3 + 2 * len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
    ]
    for i, lines in enumerate(pages):
        shown = [f"({line}) Tj" if j == 0 else f"0 -18 Td ({line}) Tj" for j, line in enumerate(lines)]
        stream = "\n".join(["BT /F1 12 Tf 72 720 Td", *shown, "ET"]).encode("latin-1")
        page = f"/Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 {font} 0 R >> >>"
        objects.append(f"<< {page} /Contents {4 + 2 * i} 0 R >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    objects.append(f"<< /Title ({title}) >>".encode("latin-1"))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\n" % (len(objects) + 1, len(objects))
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def test_seed_document() -> None:
    docs, skipped = load_documents([SEED])
    assert skipped == []
    (doc,) = docs
    assert doc.id == "innocare-mesutoclax-btd.txt"
    assert doc.title == "InnoCare’s Mesutoclax Granted Breakthrough Therapy Designation by China’s NMPA"
    assert doc.content_hash == hashlib.sha256(SEED.read_bytes()).hexdigest()
    assert doc.source == str(SEED)
    assert doc.text.count(doc.title) == 1
    assert "beginning.In" not in doc.text and "newsletter" not in doc.text.casefold()
    assert doc.sections and doc.pages == ()


def test_folder_ids_are_relative_posix_paths(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / "a.txt").write_text(BODY, encoding="utf-8")
    (tmp_path / "b.md").write_text(BODY, encoding="utf-8")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "c.txt").write_text(BODY, encoding="utf-8")
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x01")
    docs, skipped = load_documents([tmp_path])
    assert [d.id for d in docs] == ["b.md", "sub/deeper/a.txt"]
    assert skipped == []
    assert doc_id_for(tmp_path / "sub" / "x.txt", tmp_path) == "sub/x.txt"
    assert doc_id_for(Path("/elsewhere/x.txt"), tmp_path) == "x.txt"


def test_single_file_and_its_folder_are_not_loaded_twice(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(BODY, encoding="utf-8")
    assert discover([tmp_path / "a.txt", tmp_path]) == [(tmp_path / "a.txt", tmp_path)]


def test_same_id_from_two_roots_is_skipped(tmp_path: Path) -> None:
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.txt").write_text(f"{BODY} {folder}", encoding="utf-8")
    docs, skipped = load_documents([tmp_path / "one", tmp_path / "two"])
    assert [d.source for d in docs] == [str(tmp_path / "one" / "a.txt")]
    assert len(skipped) == 1 and "same document id 'a.txt'" in skipped[0].reason


def test_html(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        """<!DOCTYPE html><html><head><title>Drug Update</title><style>p { color: red; }</style>
        <script>var tracking = "secret";</script></head>
        <body><nav><a href="/">Home</a> <a href="/news">News</a></nav>
        <!-- a comment -->
        <h1>Trial Results</h1>
        <p>The new drug   reduced
           symptoms in <b>most</b> patients. It was well tolerated.</p>
        <noscript>Enable JavaScript</noscript>
        <h2>Safety</h2><div>No serious adverse events<br>were reported.</div>
        <ul><li>Nausea</li><li>Headache</li></ul>
        <footer>Copyright 2025 Example</footer></body></html>""",
        encoding="utf-8",
    )
    doc = load_document(page, tmp_path)
    assert doc.title == "Drug Update"
    for dropped in ("secret", "color", "Home", "Enable JavaScript", "comment", "Copyright"):
        assert dropped not in doc.text
    assert "The new drug reduced symptoms in most patients. It was well tolerated." in doc.text
    assert "- Nausea\n- Headache" in doc.text
    assert [s.heading for s in doc.sections] == ["Trial Results", "Safety"]
    safety = doc.sections[1]
    assert doc.text[safety.start : safety.end].startswith("Safety\n\nNo serious adverse events")


def test_hidden_html_text_is_not_indexed(tmp_path: Path) -> None:
    page = tmp_path / "hidden.html"
    page.write_text(
        """<html><body><p>The visible fact stays.</p>
        <p style="display: none">secret one</p>
        <div hidden>secret two</div>
        <span style="color:red; visibility:hidden !important">secret three</span>
        <p style="font-size:0px">secret four</p>
        <p aria-hidden="true">secret five</p>
        <p style="opacity: 0">secret six</p>
        <div style="display:none"><p>secret <b>seven</b> nested</p></div>
        <p style="font-size: 10px; opacity: 0.5">Small print stays.</p>
        <p aria-hidden="false">Shown to everyone.</p></body></html>""",
        encoding="utf-8",
    )
    text = load_document(page, tmp_path).text
    assert "secret" not in text
    for kept in ("The visible fact stays.", "Small print stays.", "Shown to everyone."):
        assert kept in text


def test_markdown(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text(
        "# Study Notes\n\nThe **primary** endpoint was [survival](https://x.org/s).\n\n"
        "## Dosing\n\n* Take `100 mg` daily.\n* With food.\n",
        encoding="utf-8",
    )
    doc = load_document(path, tmp_path)
    assert doc.title == "Study Notes"
    assert doc.text == (
        "Study Notes\n\nThe primary endpoint was survival.\n\nDosing\n\n- Take 100 mg daily.\n- With food."
    )
    assert [s.heading for s in doc.sections] == ["Study Notes", "Dosing"]


def test_pdf_pages_and_sections(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(
        minimal_pdf(
            [
                ["Introduction", "The first page talks about apples. Apples are red."],
                ["Methods", "The second page talks about pears. Pears are green."],
            ],
            title="Fruit Report",
        )
    )
    doc = load_document(path, tmp_path)
    assert doc.title == "Fruit Report"
    assert [p.number for p in doc.pages] == [1, 2]
    first, second = doc.pages
    assert doc.text[first.start : first.end] == "Introduction\n\nThe first page talks about apples. Apples are red."
    assert doc.text[second.start : second.end] == "Methods\n\nThe second page talks about pears. Pears are green."
    assert doc.text[first.end : second.start] == "\n\n"
    assert doc.page_at(doc.text.index("pears")) == 2
    assert [s.heading for s in doc.sections] == ["Introduction", "Methods"]
    chunks = chunk_document(doc, target_words=90, overlap_words=20)
    assert [(c.page, c.section) for c in chunks] == [(1, "Introduction"), (2, "Methods")]


def test_pdf_warnings_name_the_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "damaged.pdf"
    data = minimal_pdf([["Hello world. This is fine."]])
    path.write_bytes(data.replace(b"startxref\n", b"startxref\n9"))  # a wrong xref offset pypdf recovers from
    with caplog.at_level(logging.WARNING):
        doc = load_document(path, tmp_path)
    assert doc.text == "Hello world. This is fine."
    warned = [r.getMessage() for r in caplog.records]
    assert warned and all(m.startswith(f"{path}: ") for m in warned)
    assert any("startxref" in m for m in warned)


def test_pdf_without_metadata_title_uses_first_line(tmp_path: Path) -> None:
    path = tmp_path / "plain.pdf"
    path.write_bytes(minimal_pdf([["Annual Summary", "Sales rose. Costs fell."], ["Nothing else to add."]]))
    doc = load_document(path, tmp_path)
    assert doc.title == "Annual Summary"
    assert len(doc.pages) == 2


def test_cp1252_text_is_decoded(tmp_path: Path) -> None:
    text = "Le café était très bon, déjà vu. Über straße, garçon! Prix: 5 € – “fini”."
    path = tmp_path / "legacy.txt"
    path.write_bytes(text.encode("cp1252"))
    assert load_document(path, tmp_path).text == text


def test_latin1_text_is_decoded(tmp_path: Path) -> None:
    text = "Ce médicament est utilisé pour traiter la leucémie lymphoïde chronique depuis 2016."
    path = tmp_path / "latin.txt"
    path.write_bytes(text.encode("latin-1"))
    assert load_document(path, tmp_path).text == text


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_bom_files_are_decoded(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes(f"Título\n\n{BODY}".encode(encoding))
    doc = load_document(path, tmp_path)
    assert doc.text == f"Título\n\n{BODY}"
    assert doc.title == "Título"


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "looks binary"),
        ("controls.txt", bytes(range(1, 32)) * 20, "looks binary"),
        ("empty.txt", b"", "is empty"),
        ("empty.pdf", b"", "is empty"),
        ("blank.md", b"  \n\t\r\n  ", "is empty"),
        ("only-script.html", b"<html><script>x = 1</script></html>", "no text left"),
        (
            "table.xlsx",
            b"PK\x03\x04",
            "unsupported file type '.xlsx'; supported: .csv, .docx, .epub, .htm, .html, .md, .pdf, .pptx, .txt",
        ),
        ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf", "cannot parse PDF"),
    ],
)
def test_bad_files_are_skipped_with_reason(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    (tmp_path / name).write_bytes(content)
    (tmp_path / "good.txt").write_text(BODY, encoding="utf-8")
    docs, skipped = load_documents([tmp_path])
    assert [d.id for d in docs] == ["good.txt"]
    assert [s.path for s in skipped] == [str(tmp_path / name)]
    assert reason in skipped[0].reason
    with pytest.raises(IngestError, match=reason.split(";")[0].replace(".", r"\.")):
        load_document(tmp_path / name, tmp_path)


def test_missing_path_raises_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(MissingPathError, match="nope") as caught:
        load_documents([missing])
    assert isinstance(caught.value, FileNotFoundError) and isinstance(caught.value, IngestError)
    with pytest.raises(FileNotFoundError):
        load_document(tmp_path / "gone.txt", tmp_path)


def test_empty_folder_yields_nothing(tmp_path: Path) -> None:
    assert load_documents([tmp_path]) == ([], [])
    assert SUPPORTED_EXTENSIONS == (".csv", ".docx", ".epub", ".htm", ".html", ".md", ".pdf", ".pptx", ".txt")


def test_topic_docs_load_and_chunk() -> None:
    docs, skipped = load_documents([TOPIC_DOCS])
    assert skipped == []
    assert len(docs) == 9
    for doc in docs:
        assert doc.title.endswith("- NCI") or doc.id.startswith("innocare")
        assert doc.sections
        chunks = chunk_document(doc, target_words=90, overlap_words=20)
        assert len(chunks) >= 5
        ends = {end for _, end in split_sentences(doc.text)}
        for chunk in chunks:
            assert chunk.text == doc.text[chunk.start : chunk.end]
            assert chunk.end in ends
