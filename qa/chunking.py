"""Sentence splitting and sentence-aligned chunking of cleaned documents.

Every span is an offset pair into the text it came from; text is never edited here.
"""

from __future__ import annotations

import re
from bisect import bisect_right

from qa.types import Chunk, Document

_LINE = re.compile(r"[^\n\r\v\f\x1c-\x1e\x85\u2028\u2029]+")
# Terminal punctuation, then closing quotes/brackets or citation markers like "[6,7]",
# then whitespace before more text.
_TERMINAL = re.compile(r"[.!?…]+(?:[\"'”’»)\]]|\[[\d,\s–-]+\])*(?=\s+\S)")
_INITIALS = re.compile(r"(?:[^\W\d_]{1,2}\.)*[^\W\d_]")
_ABBREVIATIONS = frozenset(
    {
        "al", "approx", "apr", "aug", "ca", "cf", "co", "corp", "dec", "dept", "dr", "eds", "feb", "fig",
        "figs", "gen", "gov", "inc", "incl", "jan", "jr", "jul", "jun", "ltd", "mar", "mr", "mrs", "ms",
        "mt", "no", "nos", "nov", "oct", "pp", "prof", "resp", "rev", "sen", "sep", "sept", "sr",
        "st", "vol", "vs",
    }
)  # fmt: skip
_OPENERS = "([{\"'“‘«"


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _is_abbreviation(text: str, line_start: int, dot: int) -> bool:
    """True when the word ending at ``text[dot] == '.'`` is an abbreviation or an initial."""
    begin = dot
    while begin > line_start and not text[begin - 1].isspace():
        begin -= 1
    word = text[begin:dot].lstrip(_OPENERS)
    return bool(word) and (word.casefold() in _ABBREVIATIONS or _INITIALS.fullmatch(word) is not None)


def _next_visible(text: str, pos: int, end: int) -> int:
    while pos < end and text[pos].isspace():
        pos += 1
    return pos


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Return ``(start, end)`` spans of the sentences of ``text``, in order, without outer whitespace.

    A line break always ends a sentence (so a heading line is a sentence of its own); inside a
    line, ``.``, ``!``, ``?`` end one when followed by a space and a word that is not lower-case,
    unless the period closes an abbreviation (``e.g.``, ``Dr.``, ``U.S.``) or an initial.
    """
    spans: list[tuple[int, int]] = []
    for line in _LINE.finditer(text):
        start, end = _strip(text, line.start(), line.end())
        pos = start
        for match in _TERMINAL.finditer(text, start, end):
            following = _next_visible(text, match.end(), end)
            if text[following].islower():
                continue
            punct = match.group().rstrip("\"'”’»)]")
            if punct == "." and _is_abbreviation(text, start, match.start()):
                continue
            spans.append((pos, match.end()))
            pos = following
        if pos < end:
            spans.append((pos, end))
    return spans


def _word_count(text: str, span: tuple[int, int]) -> int:
    return len(text[span[0] : span[1]].split())


def _overlap_tail(text: str, sentences: list[tuple[int, int]], overlap_words: int) -> list[tuple[int, int]]:
    """Trailing whole sentences (never all of them) totalling at most ``overlap_words`` words."""
    tail: list[tuple[int, int]] = []
    words = 0
    for span in reversed(sentences[1:]):
        words += _word_count(text, span)
        if words > overlap_words:
            break
        tail.insert(0, span)
    return tail


def search_text(chunk: Chunk, *, contextual: bool = True) -> str:
    """What is keyword-indexed for ``chunk``: with ``contextual``, its document's title and its section
    heading first (the cheap form of contextual retrieval: a chunk deep in a section still matches the
    names its document is about), then its text. The chunk's text and offsets stay as they are."""
    if not contextual:
        return chunk.text
    head = [part for part in (chunk.title, chunk.section) if part and not chunk.text.startswith(part)]
    if len(head) == 2 and head[0] == head[1]:
        head = head[:1]
    return "\n".join([*head, chunk.text])


def chunk_document(doc: Document, *, target_words: int, overlap_words: int) -> list[Chunk]:
    """Pack whole sentences of ``doc.text`` into chunks of about ``target_words`` words.

    A chunk never cuts a sentence and starts afresh at each section heading; a chunk that
    ends for size hands its trailing sentences (at most ``overlap_words`` words) to the next.
    A sentence longer than the target is a chunk of its own (after its heading, if any).
    """
    if target_words < 1 or overlap_words < 0:
        raise ValueError("target_words must be >= 1 and overlap_words >= 0")
    text = doc.text
    section_starts = sorted({section.start for section in doc.sections})
    headings = set(section_starts)
    groups: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    words = fresh = 0  # ``fresh``: sentences of ``current`` not carried over as overlap
    section = -1

    def close(carry: bool) -> None:
        nonlocal current, words, fresh
        if fresh:
            groups.append(current)
        current = _overlap_tail(text, current, overlap_words) if carry and fresh else []
        words = sum(_word_count(text, span) for span in current)
        fresh = 0

    for span in split_sentences(text):
        count = _word_count(text, span)
        span_section = bisect_right(section_starts, span[0]) - 1
        if span_section != section:
            close(carry=False)
            section = span_section
        elif words + count > target_words and not (fresh == 1 and current[-1][0] in headings):
            close(carry=True)
            if words + count > target_words:
                current, words = [], 0
        current.append(span)
        words += count
        fresh += 1
    close(carry=False)
    return [_make_chunk(doc, ordinal, group[0][0], group[-1][1]) for ordinal, group in enumerate(groups)]


def _make_chunk(doc: Document, ordinal: int, start: int, end: int) -> Chunk:
    return Chunk(
        id=f"{doc.id}#{ordinal}",
        doc_id=doc.id,
        title=doc.title,
        text=doc.text[start:end],
        start=start,
        end=end,
        ordinal=ordinal,
        section=doc.section_at(start),
        page=doc.page_at(start),
    )
