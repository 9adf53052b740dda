"""Reading a question: its parts, the kind of answer it wants, and terms it takes for granted."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Literal

from qa import prompts
from qa.citations import critical_terms, strip_markers
from qa.text import contains_stem, content_stems, words
from qa.types import Passage

FOLLOW_UP = re.compile(
    r"^(and|what about|how about|also|but|or|then|so)\b|\b(it|its|they|them|that|this|those|these)\b", re.I
)
_SPLIT = re.compile(
    r"(?:,|;)?\s+and\s+(?=(?:what|which|who|whom|when|where|why|how|is|are|does|did|do)\b)"
    r"|\?\s+(?=\S)|;\s+",
    re.I,
)
_AUXILIARY = re.compile(
    r"(is|are|was|were|does|do|did|can|could|should|has|have|had|will|would|may|might|must)\b", re.I
)
AnswerKind = Literal["number", "date", "name"]

_DEMONYM = re.compile(r"[a-z](ese|ian|an|ish)$")
_NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred "
    "thousand million billion percent half dozen first second third single double".split()
)
_MONTHS = frozenset("january february march april may june july august september october november december".split())


def split_question(question: str) -> list[str]:
    """A question that asks two things ("Who X, and what Y?") as its parts; otherwise the question."""
    parts = [p.strip(" ,;") for p in _SPLIT.split(question) if p and p.strip(" ,;?")]
    parts = [p if p.endswith("?") else p + "?" for p in parts]
    if len(parts) < 2 or any(len(words(p)) < 3 for p in parts):
        return [question]
    return [p[0].upper() + p[1:] for p in parts]


def expected_type(question: str) -> AnswerKind | None:
    """The kind of token a direct answer must contain: "number", "date" or "name"."""
    q = question.lower()
    if re.search(r"\bhow (many|much)\b|\bwhat (percentage|proportion|share|fraction|number|dose|rate)\b", q):
        return "number"
    if re.search(r"\b(what|which|in what) (year|date|month)\b|^when (was|were|did|will)\b", q):
        return "date"
    if re.search(r"^(who|where)\b|\b(which|what) (city|country|person|company|firm)\b", q):
        return "name"
    return None


def has_expected_type(kind: AnswerKind | None, answer: str, question: str) -> bool:
    if kind is None:
        return True
    tokens = words(strip_markers(answer))
    if kind == "number":
        return any(any(c.isdigit() for c in t) or t.lower() in _NUMBER_WORDS for t in tokens)
    if kind == "date":
        return any(any(c.isdigit() for c in t) or t.lower() in _MONTHS for t in tokens)
    asked = {t.lower() for t in words(question)}
    return any(t[0].isupper() and t.lower() not in asked for t in tokens[1:] + tokens[:1])


def is_yes_no(question: str) -> bool:
    """A question answered by yes or no: its last clause opens with an auxiliary verb."""
    last = re.split(r"[.:;?]\s+", question.strip().rstrip("?"))[-1]
    return bool(_AUXILIARY.match(last))


def says_not_found(text: str) -> bool:
    low = strip_markers(text).lower()
    return not low.strip(" .") or any(marker in low for marker in prompts.NOT_FOUND_MARKERS)


def missing_premise_terms(
    question: str, passages: Sequence[Passage], in_corpus: Callable[[str], bool] | None = None
) -> list[str]:
    """Names, acronyms and numbers in the question that no retrieved passage mentions.

    An acronym counts as mentioned when the passages spell it out, and a run of capitalised
    words when the passages use its initials ("Shanghai Stock Exchange" / "SSE"). A term the
    retrieved passages lack but ``in_corpus`` finds elsewhere in the documents is not a broken
    premise (the answer check still requires it next to whatever the answer cites).
    """
    text = " ".join(p.text for p in passages)
    stems = set(content_stems(text))
    initials = _initialisms(text)
    tokens = [part for token in words(question) for part in token.split("-") if part]
    flagged: list[int] = []
    for i, token in enumerate(tokens):
        terms = critical_terms(("x " if i else "") + token)
        if i == 0 and not any(ch.isdigit() for ch in token) and sum(ch.isupper() for ch in token) < 2:
            continue
        if not terms or all(contains_stem(stems, t) for t in terms):
            continue
        if token.isupper() and token.lower() in initials:
            continue
        if _DEMONYM.search(token) and any(s.startswith(token.lower()[:4]) for s in stems):
            continue  # "Chinese" is about "China"
        if in_corpus is not None and in_corpus(token):
            continue
        flagged.append(i)
    acronyms = {w.lower() for w in words(text) if len(w) >= 2 and w.isupper()}
    missing: list[str] = []
    for run in _consecutive(flagged):
        acronym = "".join(tokens[i][0] for i in run).lower()
        if (len(run) >= 2 and acronym in stems) or (len(run) >= 3 and any(a.startswith(acronym[:2]) for a in acronyms)):
            continue  # "Hong Kong Stock Exchange" / "HKEX"
        missing.extend(tokens[i] for i in run)
    return missing


def _initialisms(text: str) -> set[str]:
    """Initials of every run of two to six capitalised words: "Center for Drug Evaluation" -> "cde"."""
    out: set[str] = set()
    caps = [w for w in words(text)]
    for i in range(len(caps)):
        letters = ""
        for w in caps[i : i + 8]:
            if w[0].isupper():
                letters += w[0].lower()
                if len(letters) >= 2:
                    out.add(letters)
            elif w.lower() not in ("for", "of", "and", "the", "de"):
                break
    return out


def _consecutive(indices: Sequence[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for i in indices:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs
