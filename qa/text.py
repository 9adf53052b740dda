"""Word-level text utilities shared by retrieval scoring and citation checks."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Set as AbstractSet

STOPWORDS = frozenset(
    "a about above after again against all also am an and any are as at be because been before being "
    "below between both but by can could did do does doing down during each either few for from further "
    "had has have having he her here hers herself him himself his how i if in into is it its itself just "
    "me more most my myself no nor not now of off on once only or other our ours ourselves out over own "
    "same she should so some such than that the their theirs them themselves then there these they this "
    "those through to too under until up very was we were what when where which while who whom why will "
    "with would you your yours yourself yourselves s t d ll m o re ve y may might must shall also within "
    "whose via per upon among amongst onto".split()
)

QUESTION_WORDS = frozenset(
    "what which who whom whose when where why how much many does did do is are was were tell describe "
    "explain name list give according document documents article say says said".split()
)

_WORD = re.compile(r"[^\W_]+(?:[.,'’-][^\W_]+)*", re.UNICODE)
_SUFFIXES = ("ations", "ation", "ments", "ment", "ings", "ing", "ies", "ied", "es", "ed", "ly", "s")


def words(text: str) -> list[str]:
    """Word tokens in order, original case, with internal punctuation (3.5, U.S, CLL/SLL split)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text))


def word_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each word of ``text`` (as ``words`` finds them, without normalising)."""
    return [m.span() for m in _WORD.finditer(text)]


def stem(token: str) -> str:
    """A crude, deterministic suffix stripper: enough to match designation/designated, cells/cell."""
    token = token.lower().replace("’", "'")
    if token.endswith("'s"):
        token = token[:-2]
    token = token.replace(",", "")
    if any(ch.isdigit() for ch in token):
        return token
    for suffix in _SUFFIXES:
        if token.endswith(suffix) and len(token) - len(suffix) >= 4:
            return token[: -len(suffix)]
    return token


def content_stems(text: str, *, drop: frozenset[str] = STOPWORDS) -> list[str]:
    """Stemmed tokens of ``text`` without stopwords, in order."""
    out = []
    for token in words(text):
        low = token.lower().replace("’", "'")
        if low in drop or low.removesuffix("'s") in drop:
            continue
        out.append(stem(token))
    return out


def stems_match(a: str, b: str) -> bool:
    """Equal stems, or a shared prefix long enough to be the same word family."""
    if a == b:
        return True
    if any(ch.isdigit() for ch in a + b):
        return False
    n = min(len(a), len(b))
    return n >= 5 and a[:5] == b[:5] and (a.startswith(b) or b.startswith(a))


def question_stems(text: str) -> frozenset[str]:
    """The content stems of a question, without stop words and question words."""
    return frozenset(content_stems(text, drop=STOPWORDS | QUESTION_WORDS))


def contains_stem(stems: AbstractSet[str], token: str) -> bool:
    return token in stems or any(stems_match(token, s) for s in stems)
