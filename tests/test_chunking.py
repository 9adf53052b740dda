"""Tests for qa.chunking: sentence spans and sentence-aligned chunks."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.chunking import chunk_document, split_sentences
from qa.cleaning import clean_text
from qa.settings import ChunkSettings
from qa.types import Chunk, Document, Page, Section

SEED = Path(__file__).resolve().parents[1] / "seeds" / "innocare-mesutoclax-btd.txt"
DEFAULTS = ChunkSettings()


def sentences(text: str) -> list[str]:
    return [text[start:end] for start, end in split_sentences(text)]


def make_doc(text: str, sections: tuple[Section, ...] = (), pages: tuple[Page, ...] = ()) -> Document:
    return Document(id="d.txt", title="D", text=text, source="d.txt", content_hash="0", pages=pages, sections=sections)


def check_chunks(doc: Document, chunks: list[Chunk]) -> None:
    """Offsets are exact, and every chunk starts and ends on sentence boundaries."""
    spans = split_sentences(doc.text)
    starts, ends = {s for s, _ in spans}, {e for _, e in spans}
    for ordinal, chunk in enumerate(chunks):
        assert chunk.text == doc.text[chunk.start : chunk.end]
        assert chunk.start in starts and chunk.end in ends
        assert (chunk.id, chunk.doc_id, chunk.ordinal) == (f"{doc.id}#{ordinal}", doc.id, ordinal)
        assert chunk.title == doc.title
        assert chunk.section == doc.section_at(chunk.start)
        assert chunk.page == doc.page_at(chunk.start)
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)


@pytest.fixture(scope="module")
def seed_doc() -> Document:
    cleaned = clean_text(SEED.read_text(encoding="utf-8"))
    return make_doc(cleaned.text, cleaned.sections)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dr. Smith met Mr. Jones. They talked.", ["Dr. Smith met Mr. Jones.", "They talked."]),
        (
            "Agents (e.g. ibrutinib) work, i.e. They help. Next.",
            ["Agents (e.g. ibrutinib) work, i.e. They help.", "Next."],
        ),
        ("The U.S. FDA approved it. vs. Inc. Ltd. stay.", ["The U.S. FDA approved it. vs. Inc. Ltd. stay."]),
        ("A dose of 3.5 mg. Then 2.5 mg.", ["A dose of 3.5 mg.", "Then 2.5 mg."]),
        ("Really? Yes! Fine...  Done", ["Really?", "Yes!", "Fine...", "Done"]),
        ("He said “stop.” Then he left.", ["He said “stop.”", "Then he left."]),
        ("Of cells.[6,7] As assays improved.", ["Of cells.[6,7]", "As assays improved."]),
        (
            "Heading\nBody text here. More\n\n  - item one\n- item two  ",
            ["Heading", "Body text here.", "More", "- item one", "- item two"],
        ),
        ("   \n\n ", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_seed_chunks(seed_doc: Document) -> None:
    chunks = chunk_document(seed_doc, target_words=DEFAULTS.target_words, overlap_words=DEFAULTS.overlap_words)
    check_chunks(seed_doc, chunks)
    assert 10 <= len(chunks) <= 30
    for chunk in chunks:
        sentence_count = len(split_sentences(chunk.text))
        assert len(chunk.text.split()) <= DEFAULTS.target_words or sentence_count <= 2
        assert chunk.section is not None
        assert seed_doc.section_at(chunk.end - 1) == chunk.section  # never crosses a heading


def test_every_sentence_is_in_some_chunk(seed_doc: Document) -> None:
    chunks = chunk_document(seed_doc, target_words=40, overlap_words=10)
    for start, end in split_sentences(seed_doc.text):
        assert any(c.start <= start and end <= c.end for c in chunks)


def test_overlap_is_whole_trailing_sentences() -> None:
    text = " ".join(f"Sentence number {i} has exactly seven words." for i in range(30))
    doc = make_doc(text)
    chunks = chunk_document(doc, target_words=30, overlap_words=15)
    check_chunks(doc, chunks)
    for previous, chunk in zip(chunks, chunks[1:], strict=False):
        shared = doc.text[chunk.start : previous.end] if chunk.start < previous.end else ""
        assert len(shared.split()) == 14  # two 7-word sentences fit in 15 words, three do not
        assert len(chunk.text.split()) <= 30


def test_no_overlap_when_zero() -> None:
    doc = make_doc(" ".join(f"Short sentence {i} here." for i in range(40)))
    chunks = chunk_document(doc, target_words=20, overlap_words=0)
    check_chunks(doc, chunks)
    assert all(b.start > a.end for a, b in zip(chunks, chunks[1:], strict=False))


def test_long_sentence_is_its_own_chunk() -> None:
    long_sentence = "Long " + " ".join(["word"] * 50) + "."
    doc = make_doc(f"Short one here. {long_sentence} Another short one.")
    chunks = chunk_document(doc, target_words=20, overlap_words=5)
    check_chunks(doc, chunks)
    assert [c.text for c in chunks] == ["Short one here.", long_sentence, "Another short one."]


def test_chunks_start_at_headings_and_keep_heading_with_text() -> None:
    cleaned = clean_text("Intro\n\nOne two three.\n\nMethods\n\nFour five six. Seven eight nine.")
    doc = make_doc(cleaned.text, cleaned.sections)
    chunks = chunk_document(doc, target_words=90, overlap_words=20)
    check_chunks(doc, chunks)
    assert [(c.text, c.section) for c in chunks] == [
        ("Intro\n\nOne two three.", "Intro"),
        ("Methods\n\nFour five six. Seven eight nine.", "Methods"),
    ]


def test_heading_stays_with_a_long_first_sentence() -> None:
    long_sentence = " ".join(["word"] * 30) + "."
    cleaned = clean_text(f"Results\n\n{long_sentence} Next sentence.")
    doc = make_doc(cleaned.text, cleaned.sections)
    chunks = chunk_document(doc, target_words=10, overlap_words=5)
    assert [c.text for c in chunks] == [f"Results\n\n{long_sentence}", "Next sentence."]


def test_page_numbers_come_from_chunk_start() -> None:
    text = "Page one text.\n\nPage two text."
    doc = make_doc(text, pages=(Page(1, 0, 14), Page(2, 16, len(text))))
    chunks = chunk_document(doc, target_words=3, overlap_words=0)
    assert [(c.text, c.page) for c in chunks] == [("Page one text.", 1), ("Page two text.", 2)]


def test_empty_document_and_bad_arguments() -> None:
    assert chunk_document(make_doc(""), target_words=90, overlap_words=20) == []
    with pytest.raises(ValueError):
        chunk_document(make_doc("Text."), target_words=0, overlap_words=0)


def test_search_text_puts_the_title_and_section_before_the_chunk() -> None:
    from qa.chunking import search_text
    from qa.types import Chunk

    deep = Chunk("d#3", "d", "RESONATE Trial Results", "It was funded by two companies.", 40, 71, 3, "Funding")
    assert search_text(deep) == "RESONATE Trial Results\nFunding\nIt was funded by two companies."
    assert search_text(deep, contextual=False) == deep.text
    first = Chunk("d#0", "d", "Funding", "Funding\n\nIt was funded.", 0, 22, 0, "Funding")
    assert search_text(first) == first.text  # the heading is already the chunk's first words
    untitled = Chunk("e#0", "e", "", "Plain text.", 0, 11, 0, None)
    assert search_text(untitled) == "Plain text."
