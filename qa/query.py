"""A question, read once: cleaned, split into its parts, and each part analysed and embedded.

Every later stage takes the ``Query`` instead of the string, so nothing re-derives the
answer kind, the yes/no flag, the question's content stems or its embedding.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from qa.embedding import Embedder
from qa.questions import AnswerKind, expected_type, is_yes_no, split_question
from qa.text import question_stems, words


class QuestionError(ValueError):
    """The question cannot be answered as given (empty, for example); the message says why."""


@dataclass(frozen=True)
class Query:
    """One answerable question (a part of what was asked), analysed once; ``english`` is whether the
    question as asked reads as English (the embedding model reads English only)."""

    text: str
    kind: AnswerKind | None
    yes_no: bool
    stems: frozenset[str]
    vector: np.ndarray = field(compare=False, repr=False)
    english: bool = True

    @property
    def wants_number(self) -> bool:
        """The answer is a number or a date, so sentences holding digits matter more."""
        return self.kind in ("number", "date")


@dataclass(frozen=True)
class Question:
    """What the user asked, its standalone form (after a follow-up's rewrite), and its parts."""

    asked: str
    standalone: str
    parts: tuple[Query, ...]
    notes: tuple[str, ...] = ()


# ANSI/VT terminal sequences (colours, cursor moves, titles) pasted from a terminal: CSI and OSC.
_TERMINAL_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x9b[0-?]*[ -/]*[@-~]")


_WIDE_LETTER_WEIGHT = 2  # a CJK character or syllable carries about as much as a short Latin word
_MAX_FOREIGN_SHARE = 0.5  # above this share of weighted letters outside the Latin script: not English
_MIN_ACCENTED_WORDS = 2  # Latin-script questions with this many words with accents ...
_MIN_ACCENTED_SHARE = 0.25  # ... making up this share of the words are in another language


def _is_latin(ch: str) -> bool:
    return ch.isascii() or unicodedata.name(ch, "").startswith("LATIN ")


def mostly_english(text: str) -> bool:
    """Whether ``text`` reads as English, judged by its letters alone (no word lists).

    It does not when most of its letters are in another script (Chinese, Japanese, Korean, Cyrillic,
    Arabic, Greek, …; a CJK character counts as two letters), when it opens with Spanish "¿" or "¡",
    or when many of its Latin-script words carry accents (French, Spanish, Portuguese, Vietnamese, …).
    A name with an accent in an English question (Tromsø) or German without umlauts still passes.
    """
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return True
    foreign = sum(
        _WIDE_LETTER_WEIGHT if unicodedata.east_asian_width(ch) in ("W", "F") else 1
        for ch in letters
        if not _is_latin(ch)
    )
    latin = len(letters) - sum(1 for ch in letters if not _is_latin(ch))
    if foreign > _MAX_FOREIGN_SHARE * (foreign + latin) or "¿" in text or "¡" in text:
        return False
    tokens = words(text)
    accented = sum(1 for token in tokens if any(ch.isalpha() and not ch.isascii() for ch in token))
    return not (accented >= _MIN_ACCENTED_WORDS and accented >= _MIN_ACCENTED_SHARE * len(tokens))


def clean_question(question: object, max_chars: int) -> tuple[str, tuple[str, ...]]:
    """The question with control characters and extra spaces removed, cut to ``max_chars`` (with a note)."""
    if not isinstance(question, str):
        raise QuestionError("The question must be text.")
    question = _TERMINAL_ESCAPE.sub(" ", question)
    cleaned = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in question)
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        raise QuestionError("The question is empty: type a question about your documents.")
    if len(cleaned) > max_chars:  # a long paste usually ends with the question: keep the end
        kept = cleaned[-max_chars:]
        if not cleaned[-max_chars - 1].isspace() and " " in kept:
            kept = kept.split(" ", 1)[1]  # not from the middle of a word
        note = (
            f"The question was {len(cleaned):,} characters long; only its last {len(kept):,} were used "
            "(where a long paste usually asks its question)."
        )
        return kept, (note,)
    return cleaned, ()


class QueryAnalyser:
    """Turns a cleaned (and, for follow-ups, rewritten) question into a ``Question``."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def warm_up(self) -> None:
        self.embedder.warm_up()

    def run(self, *, asked: str, standalone: str | None = None, notes: tuple[str, ...] = ()) -> Question:
        standalone = standalone or asked
        english = mostly_english(asked)  # the user's own words, not a rewrite of them
        parts = tuple(self.analyse(part, english=english) for part in split_question(standalone))
        return Question(asked=asked, standalone=standalone, parts=parts, notes=notes)

    def analyse(self, text: str, *, english: bool | None = None) -> Query:
        """One part analysed and embedded; ``english`` defaults to what ``text`` itself reads as."""
        vector = self.embedder.embed([text])[0] if text.strip() else np.zeros(0, dtype=np.float32)
        english = mostly_english(text) if english is None else english
        return Query(text, expected_type(text), is_yes_no(text), question_stems(text), vector, english)
