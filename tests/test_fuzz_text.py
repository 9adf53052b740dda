"""Property tests: cleaning, sentence splitting and chunking never fail and keep offsets exact."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from qa.chunking import chunk_document, split_sentences
from qa.cleaning import clean_text, normalize_for_match
from qa.types import Document

FUZZ = settings(max_examples=200, deadline=None, database=None)

# Arbitrary unicode, plus text made of the pieces the rules look at (punctuation, breaks, abbreviations).
PIECES = st.sampled_from(
    [" ", "  ", "\n", "\n\n", "\r\n", "\t", ".", "?", "!", "…", "”", "’", ")", "[1,2]", "e.g.", "U.S.", "Dr.",
     "3.5", "www.x.com", "a", "A", "In", "word", "Heading", "- ", "| ", "---", "Source link", "é", "e\u0301",
     "\u200b", "\x00", "\u2028", "ß", "ǅ", "İ"]
)  # fmt: skip
TEXT = st.one_of(st.text(max_size=400), st.lists(PIECES, max_size=80).map("".join))


def assert_ordered_spans(text: str, spans: list[tuple[int, int]]) -> None:
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text)
        assert text[start:end] == text[start:end].strip()
        previous_end = end


@FUZZ
@given(TEXT)
def test_clean_text_never_raises_and_sections_are_in_bounds(raw: str) -> None:
    result = clean_text(raw)
    assert "\n\n\n" not in result.text and result.text == result.text.strip()
    assert_ordered_spans(result.text, [(s.start, s.end) for s in result.sections])
    for section in result.sections:
        assert result.text.startswith(section.heading, section.start)
    normalize_for_match(raw)


@FUZZ
@given(TEXT)
def test_split_sentences_spans_are_ordered_and_in_bounds(text: str) -> None:
    spans = split_sentences(text)
    assert_ordered_spans(text, spans)
    covered = "".join(text[start:end] for start, end in spans)
    assert "".join(text.split()) == "".join(covered.split())  # no visible character is lost


@FUZZ
@given(TEXT, st.integers(1, 40), st.integers(0, 20), st.booleans())
def test_chunks_match_their_offsets(raw: str, target: int, overlap: int, cleaned: bool) -> None:
    result = clean_text(raw) if cleaned else None
    text = result.text if result else raw
    doc = Document(
        id="f.txt",
        title="F",
        text=text,
        source="f.txt",
        content_hash="0",
        sections=result.sections if result else (),
    )
    chunks = chunk_document(doc, target_words=target, overlap_words=overlap)
    for ordinal, chunk in enumerate(chunks):
        assert 0 <= chunk.start < chunk.end <= len(text)
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.id == f"f.txt#{ordinal}"
    assert [c.start for c in chunks] == sorted({c.start for c in chunks})
    assert [c.end for c in chunks] == sorted({c.end for c in chunks})
