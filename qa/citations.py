"""Citations are verified, not trusted.

The generator writes ``[n]`` markers, but a small model cites passages it was never
given, cites the wrong one when distractors are present, or invents facts. Each answer
sentence is therefore checked against the passages: markers outside the given
passages are dropped, a sentence is kept only when a passage supports its content
words (every number and name it adds must occur in that passage), an unsupported
sentence is re-attributed to the passage that supports it or removed, and each kept
citation points at the exact sentence span of the document that supports it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace

from qa.chunking import split_sentences
from qa.text import QUESTION_WORDS, STOPWORDS, contains_stem, content_stems, stem, word_spans, words
from qa.types import Chunk, Citation, Passage, Span

MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
"""A citation marker: ``[1]``, ``[1, 2]`` or ``[1; 2]``; group 1 holds the numbers."""
_MARKER = re.compile(r"\s*" + MARKER.pattern)
_YES_NO = frozenset({"yes", "no"})


def parse_markers(text: str) -> list[int]:
    """All marker numbers in order of appearance, ``[1, 2]`` for ``"a [1] b [2, 1]"`` (deduplicated)."""
    seen: list[int] = []
    for match in _MARKER.finditer(text):
        for n in marker_numbers(match.group(1)):
            if n not in seen:
                seen.append(n)
    return seen


def marker_numbers(marker_body: str) -> list[int]:
    """``"1, 2"`` (a ``MARKER``'s group 1) → ``[1, 2]``."""
    return [int(part) for part in re.split(r"\s*[,;]\s*", marker_body.strip())]


def shift_markers(text: str, shift: int) -> str:
    """Every marker number raised by ``shift``: ``"a [1, 2]"`` → ``"a [3, 4]"`` for 2."""
    return MARKER.sub(lambda m: "[" + ", ".join(str(n + shift) for n in marker_numbers(m.group(1))) + "]", text)


def strip_markers(text: str) -> str:
    """The text without ``[n]`` markers, with the spaces they leave tidied."""
    out = _MARKER.sub("", text)
    return " ".join(re.sub(r"\s+([.,;:!?])", r"\1", out).split())


def split_answer(text: str) -> list[tuple[str, list[int]]]:
    """Answer sentences with the markers attached to each (a marker after the full stop counts too)."""
    text = re.sub(r"([.!?])(\s*\[\d+(?:\s*[,;]\s*\d+)*\])+", lambda m: m.group(0)[1:] + m.group(1), text.strip())
    out = []
    for a, b in split_sentences(text):
        part = text[a:b]
        if strip_markers(part).strip(" .;:,-"):
            out.append((part.strip(), parse_markers(part)))
    return out


def critical_terms(text: str) -> set[str]:
    """Stems of the tokens a claim cannot be supported without: numbers, acronyms and names."""
    terms: set[str] = set()
    for i, token in enumerate(words(text)):
        low = token.lower()
        if low in STOPWORDS or low in QUESTION_WORDS:
            continue
        is_number = any(ch.isdigit() for ch in token)
        is_acronym = sum(ch.isupper() for ch in token) >= 2
        is_name = i > 0 and token[0].isupper()
        if is_number or is_acronym or is_name:
            terms.add(stem(token))
    return terms


def support(sentence: str, passage: str, asked: AbstractSet[str] = frozenset(), context: str | None = None) -> float:
    """How well ``passage`` supports ``sentence`` beyond what the question already says, in [0, 1].

    ``asked`` holds the question's content stems (``qa.text.question_stems``).

    The score is the share of the sentence's new content words found in the passage, and 0
    when a number or name that the sentence adds is missing from it, or when a number or name
    it repeats from the question is missing from both the passage and its surrounding
    ``context`` (the whole chunk): an answer cannot confirm a premise the documents never state.
    """
    passage_stems = set(content_stems(passage))
    context_stems = passage_stems | set(content_stems(context or passage))
    sentence_stems = [s for s in content_stems(strip_markers(sentence)) if s not in _YES_NO]
    novel = [s for s in sentence_stems if not contains_stem(asked, s)]
    for term in critical_terms(strip_markers(sentence)) - _YES_NO:
        known = context_stems if term in asked else passage_stems
        if not contains_stem(known, term):
            return 0.0
    target = novel or sentence_stems or list(asked)
    if not target:
        return 0.0
    return sum(contains_stem(passage_stems, s) for s in target) / len(target)


def quote_span(chunk: Chunk, claim: str) -> tuple[int, int]:
    """Document offsets of the sentence (or two adjacent sentences) of ``chunk`` that best support ``claim``."""
    spans = split_sentences(chunk.text) or [(0, len(chunk.text))]
    scores = [support(claim, chunk.text[a:b]) for a, b in spans]
    best = max(range(len(spans)), key=lambda i: (scores[i], -i))
    start, end = spans[best]
    if scores[best] < 1.0 and len(spans) > 1:
        pairs = [(i, i + 1) for i in (best - 1, best) if i >= 0 and i + 1 < len(spans)]
        joined = [(support(claim, chunk.text[spans[i][0] : spans[j][1]]), i, j) for i, j in pairs]
        if joined:
            score, i, j = max(joined)
            if score > scores[best]:
                start, end = spans[i][0], spans[j][1]
    return chunk.start + start, chunk.start + end


@dataclass
class VerifiedAnswer:
    text: str
    citations: list[Citation]
    support: float
    kept: int
    dropped: list[str]
    reattributed: int


def verify_answer(
    raw: str,
    passages: Sequence[Passage],
    asked: AbstractSet[str],
    *,
    min_support: float,
    context: Mapping[str, str] | None = None,
) -> VerifiedAnswer:
    """Keep only supported sentences, each cited to the passage that supports it, renumbered from 1.

    ``asked``: the question's content stems (``qa.text.question_stems``).
    """
    kept: list[tuple[str, list[int], float]] = []
    dropped: list[str] = []
    reattributed = 0
    for sentence, markers in split_answer(raw):
        claim = strip_markers(sentence)
        scores = [support(claim, p.text, asked, (context or {}).get(p.chunk.id)) for p in passages]
        valid = [m for m in markers if 1 <= m <= len(passages) and scores[m - 1] >= min_support]
        if not valid and scores and max(scores) >= min_support:
            valid = [max(range(len(scores)), key=lambda i: (scores[i], -i)) + 1]
            reattributed += 1
        if valid:
            kept.append((claim, valid, max(scores[m - 1] for m in valid)))
        else:
            dropped.append(claim)

    numbering: dict[int, int] = {}
    citations: list[Citation] = []
    parts: list[str] = []
    for claim, markers, _ in kept:
        labels = []
        for m in markers:
            if m not in numbering:
                numbering[m] = len(numbering) + 1
                chunk = passages[m - 1].chunk
                start, end = quote_span(chunk, claim)
                citation = cite(numbering[m], chunk, start, end)
                citations.append(replace(citation, support=round(support(claim, citation.quote, asked), 3)))
            labels.append(f"[{numbering[m]}]")
        body = claim.rstrip()
        tail = ""
        if body and body[-1] in ".!?":
            body, tail = body[:-1], body[-1]
        parts.append(f"{body} {''.join(labels)}{tail}")
    mean_support = sum(s for _, _, s in kept) / len(kept) if kept else 0.0
    return VerifiedAnswer(" ".join(parts), citations, mean_support, len(kept), dropped, reattributed)


def answer_phrase(answer: str, asked: AbstractSet[str]) -> str | None:
    """The shortest words of ``answer`` that answer: its first run of words the question did not
    already say (``asked``: the question's content stems) holding a content word, trimmed of stop
    words at both ends; the reading-comprehension trick of dropping the question's own words.
    ``None`` if the answer only repeats the question."""
    text = strip_markers(answer)
    spans = word_spans(text)
    run: list[tuple[int, int]] = []
    for a, b in [*spans, (-1, -1)]:
        if a >= 0 and not _is_asked(text[a:b], asked):
            run.append((a, b))
            continue
        content = [(x, y) for x, y in run if not _is_neutral(text[x:y])]
        if content:
            start, end = content[0][0], content[-1][1]
            if text.count("(", start, end) > text.count(")", start, end) and text[end : end + 1] == ")":
                end += 1  # close the bracket the phrase opened: "(CDE)"
            return text[start:end]
        run = []
    return None


def _is_neutral(token: str) -> bool:
    low = token.lower()
    return low in STOPWORDS or low in QUESTION_WORDS


def _is_asked(token: str, asked: AbstractSet[str]) -> bool:
    return not _is_neutral(token) and contains_stem(asked, stem(token))


def locate_phrase(phrase: str, citation: Citation) -> Span | None:
    """``phrase`` as a span of the document inside ``citation``'s quote, matched word for word
    (case, spacing and punctuation between words may differ); ``None`` when the quote lacks it."""
    tokens = re.findall(r"\w+", phrase)
    if not tokens:
        return None
    pattern = r"(?<!\w)" + r"\W{0,3}".join(re.escape(t) for t in tokens) + r"(?!\w)"
    match = re.search(pattern, citation.quote, flags=re.IGNORECASE)
    if match is None:
        return None
    text = match.group(0)
    if text.count("(") > text.count(")") and citation.quote[match.end() : match.end() + 1] == ")":
        text += ")"  # close the bracket the phrase opened: "(NMPA)", as the document has it
    start = citation.start + match.start()
    return Span(text, citation.doc_id, start, start + len(text), citation.n)


def cite(n: int, chunk: Chunk, start: int, end: int, support: float = 0.0) -> Citation:
    """A citation of the document span ``[start, end)``, which lies inside ``chunk``."""
    quote = chunk.text[start - chunk.start : end - chunk.start]
    return Citation(n, chunk.doc_id, chunk.title, chunk.id, start, end, quote, support)
