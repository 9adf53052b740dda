"""Turn raw extracted text into the cleaned text that every offset in the system refers to.

The rules are general (no knowledge of any one file): unicode and whitespace normalisation,
splitting of sentences glued together without a space, removal of web boilerplate lines,
of repeated headings, paragraphs and sentence runs, and detection of section headings.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

from qa.chunking import split_sentences
from qa.types import Section

HEADING_MAX_WORDS = 12
NEAR_DUPLICATE = 0.9  # share of a paragraph's word shingles found in one earlier paragraph
MIN_DUPLICATE_SENTENCE_WORDS = 8
_SHINGLE = 3
_MIN_SHINGLE_WORDS = HEADING_MAX_WORDS + 1  # shorter lines are only dropped when repeated exactly

_LINE_BREAKS = re.compile(r"\r\n?|[\v\f\x1c-\x1e\x85\u2028\u2029]")
# controls, soft hyphen, zero-width space, bidi marks, BOM (zero-width joiners stay: scripts need them)
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u2069\ufeff\ufff9-\ufffb\ud800-\udfff]"
)
_SPACES = re.compile(r"[^\S\n]+")
_GLUED = re.compile(r"(?<=\S)[.!?][\"”’)\]]?(?=[^\W\d_])")
_CLOSERS = '"”’)]%'
_INITIAL = re.compile(r"[^\W\d_]\.")  # "Ph.D." goes on with "D."
_URLISH = re.compile(r"[.@/\\:_]|www", re.IGNORECASE)
_LIST_ITEM = re.compile(r"(?:[-*+•‣◦▪]|\d{1,3}[.)]|\(?[a-z]\))\s")
_SENTENCE_END = re.compile(r"[.!?:;…][\"'”’)\]]*(?:\[[\d,\s–-]+\])*$")
_WORD = re.compile(r"\w+")
# a line ending in one of these words goes on in the next line
_GLUE_WORDS = frozenset(
    {
        "a", "about", "after", "among", "an", "and", "are", "as", "at", "be", "been", "before", "between",
        "but", "by", "during", "for", "from", "has", "have", "her", "his", "in", "into", "is", "its", "nor",
        "not", "of", "on", "onto", "or", "our", "over", "per", "such", "than", "that", "the", "their",
        "these", "this", "those", "to", "under", "via", "was", "were", "which", "while", "who", "whom",
        "whose", "with", "within", "without", "your",
    }
)  # fmt: skip

_BOILERPLATE = re.compile(
    r"source links?|newsletters?(?: updates?| sign ?ups?| subscriptions?)?"
    r"|.*\benter your e-?mail\b.*|.*\b(?:subscribe|sign up|signup)\b.*\bnewsletters?\b.*"
    r"|subscribe(?: now| today| here)?(?: to\b.*)?|sign up(?: now| today| here)?"
    r"|share(?: this(?: article| post| story| page)?| on \w+)?|follow us(?: on\b.*)?"
    r"|click here\b.*|(?:read|see|learn) more|read the full (?:story|article)|continue reading"
    r"|advertisements?|sponsored(?: content)?|(?:print|e-?mail|facebook|twitter|linkedin|whatsapp|tweet)"
    r"|back to top|skip to (?:main )?content|(?:previous|next) (?:post|article|story)"
    r"|(?:related|recommended|popular) (?:posts|articles|stories|news)|.*\ball rights reserved\b.*"
    r"|(?:copyright\b|©).*"
)
_COOKIE_NOTICE = re.compile(r".*\bcookies?\b.*\b(?:use|accept|consent|policy|settings|experience)\b.*")
_COOKIE_MAX_WORDS = 40

_QUOTES = str.maketrans(
    {
        **dict.fromkeys("‘’‚‛′`´", "'"),
        **dict.fromkeys("“”„‟″«»", '"'),
        **dict.fromkeys("‐‑‒–—―−", "-"),
        "…": "...",
    }
)


@dataclass(frozen=True)
class CleanResult:
    """Cleaned text and the sections (heading + span) found in it."""

    text: str
    sections: tuple[Section, ...]


def normalize_for_match(s: str) -> str:
    """Casefold, map curly quotes and dashes to ASCII and collapse whitespace, for comparisons."""
    return " ".join(s.casefold().translate(_QUOTES).split())


def clean_text(raw: str) -> CleanResult:
    """Clean ``raw`` (see the module docstring); paragraphs are separated by exactly one blank line."""
    text = _INVISIBLE.sub("", _LINE_BREAKS.sub("\n", raw).replace("\t", " "))
    text = unicodedata.normalize("NFC", text)
    lines = [_split_glued(_SPACES.sub(" ", line).strip()) for line in text.split("\n")]
    paragraphs = _Deduplicator().run(_paragraphs(lines))
    return _assemble(paragraphs)


def _split_glued(line: str) -> str:
    """Insert the missing space in ``end.Start`` (but not in ``U.S.``, ``e.g.``, ``3.5``, ``x.com``)."""
    while (fixed := _GLUED.sub(_space_if_glued, line)) != line:  # a split can reveal another
        line = fixed
    return line


def _space_if_glued(match: re.Match[str]) -> str:
    line = match.string
    before = line[: match.start()].rsplit(" ", 1)[-1]
    after = line[match.end() :].split(" ", 1)[0]
    glued = (
        line[match.end()].isupper()
        and (before[-1].islower() or before[-1].isdigit() or before[-1] in _CLOSERS)
        and not _URLISH.search(before)
        and not _URLISH.search(after.rstrip('.!?,;:"”’)]'))
        and not _INITIAL.match(after)
    )
    return match.group() + " " if glued else match.group()


def _is_list_item(line: str) -> bool:
    return _LIST_ITEM.match(line) is not None or line.startswith("|")


def _is_boilerplate(line: str) -> bool:
    words = len(line.split())
    core = re.sub(r"^[^\w©]+|\W+$", "", line.casefold())
    if words <= HEADING_MAX_WORDS and _BOILERPLATE.fullmatch(core):
        return True
    return words <= _COOKIE_MAX_WORDS and _COOKIE_NOTICE.fullmatch(core) is not None


def _paragraphs(lines: list[str]) -> list[list[str]]:
    """Group lines into paragraphs (blank-line separated), re-joining soft-wrapped lines."""
    paragraphs: list[list[str]] = []
    current: list[str] = []
    for line in [*lines, ""]:
        if not any(ch.isalnum() for ch in line):  # blank, or a rule like "---" or "|---|"
            if line == "" and current:
                paragraphs += _split_at_headings([kept for kept in current if not _is_boilerplate(kept)])
                current = []
            continue
        if current and _continues(current[-1], line):
            joiner = "" if current[-1].endswith("-") and current[-1][-2:-1].isalpha() else " "
            current[-1] += joiner + line
        else:
            current.append(line)
    return paragraphs


def _split_at_headings(lines: list[str]) -> list[list[str]]:
    """Give a heading-like line followed by a text line (as PDFs have them) its own paragraph."""
    groups: list[list[str]] = [[]]
    for i, line in enumerate(lines):
        heading = _is_heading_like(line) and i + 1 < len(lines) and not _is_heading_like(lines[i + 1])
        if heading and groups[-1]:
            groups.append([])
        groups[-1].append(line)
        if heading:
            groups.append([])
    return [group for group in groups if group]


def _continues(previous: str, line: str) -> bool:
    """True when ``line`` is the wrapped continuation of ``previous``."""
    if _is_list_item(line) or previous.startswith("|"):
        return False
    if line[0].islower() or previous[-1] in ",(&" or previous.rsplit(" ", 1)[-1].casefold() in _GLUE_WORDS:
        return True
    return len(previous.split()) > HEADING_MAX_WORDS and not _SENTENCE_END.search(previous)


def _key(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(normalize_for_match(text)))


class _Deduplicator:
    """Drops repeated paragraphs (exact or near) and runs of sentences already seen."""

    def __init__(self) -> None:
        self.sentences: set[tuple[str, ...]] = set()
        self.paragraphs: set[tuple[str, ...]] = set()
        self.shingles: list[set[tuple[str, ...]]] = []
        self.postings: dict[tuple[str, ...], list[int]] = {}

    def run(self, paragraphs: list[list[str]]) -> list[str]:
        kept = []
        for lines in paragraphs:
            if self._near_duplicate(_key("\n".join(lines))):
                continue
            text, sentence_keys = self._new_sentences("\n".join(lines))
            text = "\n".join(line for line in text.split("\n") if not _is_boilerplate(line))
            key = _key(text)
            if not key or key in self.paragraphs or self._near_duplicate(key):
                continue
            self.sentences.update(sentence_keys)
            self.paragraphs.add(key)
            self._remember(key)
            kept.append(text)
        return kept

    def _new_sentences(self, paragraph: str) -> tuple[str, list[tuple[str, ...]]]:
        """The paragraph without sentences seen before (long ones, and any that follow one)
        and without sentences that have no letter or digit left."""
        parts: list[str] = []
        keys: list[tuple[str, ...]] = []
        kept_end = 0
        dropping = False
        for start, end in split_sentences(paragraph):
            sentence = paragraph[start:end]
            key = _key(sentence)
            seen = key in self.sentences or key in keys
            dropping = seen and (dropping or len(key) >= MIN_DUPLICATE_SENTENCE_WORDS)
            if dropping or not any(ch.isalnum() for ch in sentence):
                continue
            if parts:
                parts.append("\n" if "\n" in paragraph[kept_end:start] else " ")
            parts.append(sentence)
            keys.append(key)
            kept_end = end
        return "".join(parts), keys

    def _near_duplicate(self, key: tuple[str, ...]) -> bool:
        """At least 90 % of the paragraph's shingles occur in one kept paragraph (this covers Jaccard).

        Exact, and near-linear in the text's length: a paragraph holding ``need`` of the ``n``
        shingles holds at least one of any ``n - need + 1`` of them, so only the paragraphs listed
        under the rarest ``n - need + 1`` shingles are candidates, each then counted exactly.
        Common shingles ("one of the"), listed under most paragraphs, are never scanned.
        """
        if len(key) < _MIN_SHINGLE_WORDS:
            return False
        shingles = _shingles(key)
        need = math.ceil(NEAR_DUPLICATE * len(shingles))
        rarest = sorted(shingles, key=lambda s: len(self.postings.get(s, ())))[: len(shingles) - need + 1]
        candidates = {i for shingle in rarest for i in self.postings.get(shingle, ())}
        return any(len(shingles & self.shingles[i]) >= need for i in candidates)

    def _remember(self, key: tuple[str, ...]) -> None:
        if len(key) < _MIN_SHINGLE_WORDS:
            return
        shingles = _shingles(key)
        for shingle in shingles:
            self.postings.setdefault(shingle, []).append(len(self.shingles))
        self.shingles.append(shingles)


def _shingles(key: tuple[str, ...]) -> set[tuple[str, ...]]:
    return {key[i : i + _SHINGLE] for i in range(len(key) - _SHINGLE + 1)}


def _is_heading_like(paragraph: str) -> bool:
    if "\n" in paragraph or _is_list_item(paragraph) or len(paragraph.split()) > HEADING_MAX_WORDS:
        return False
    first = next((ch for ch in paragraph if ch.isalnum()), "")
    return (first.isupper() or first.isdigit()) and paragraph[-1] not in ".,;:"


def _assemble(paragraphs: list[str]) -> CleanResult:
    """Join paragraphs with one blank line; a heading-like line followed by a paragraph opens a section."""
    text = "\n\n".join(paragraphs)
    starts: list[tuple[str, int]] = []
    offset = 0
    for i, paragraph in enumerate(paragraphs):
        is_heading = _is_heading_like(paragraph)
        if is_heading and i + 1 < len(paragraphs) and not _is_heading_like(paragraphs[i + 1]):
            starts.append((paragraph, offset))
        offset += len(paragraph) + 2
    return CleanResult(text, sections_from_headings(starts, len(text)))


def sections_from_headings(headings: list[tuple[str, int]], length: int) -> tuple[Section, ...]:
    """Sections from ``(heading, start)`` pairs in order: each runs to the next heading or ``length``."""
    ends = [start for _, start in headings[1:]] + [length]
    return tuple(Section(heading, start, end) for (heading, start), end in zip(headings, ends, strict=False))
