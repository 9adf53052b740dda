"""Documents that disagree: the answer is checked against the best other document that speaks to the question.

An answer comes from the passages its citations point to. When the retrieved pool also holds a
passage of another document that is as relevant to the question and mentions as much of it, that
document is asked the same question on its own. If it answers, verified, with a different short
answer, the two documents disagree on the asked fact: the answer then says so, cites both, and its
confidence is lowered (PaperQA2 reports contradictions the same way). A document that does not
answer, or answers the same, changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qa.query import Query
from qa.settings import ConflictSettings
from qa.text import content_stems
from qa.types import Passage, Span


@dataclass(frozen=True)
class Rival:
    """Another document's passages, as relevant to the question as the answer's own."""

    doc_id: str
    title: str
    passages: tuple[Passage, ...]


def rival_document(
    query: Query, pool: Sequence[Passage], cited_docs: set[str], settings: ConflictSettings
) -> Rival | None:
    """The best document of ``pool`` the answer does not cite whose best passage is nearly as close to the
    question (``min_relative_relevance`` of the cited passages' best cosine) and shares nearly as many of
    the question's words (``min_relative_overlap``); None when there is none, or when the check is off."""
    if not settings.enabled or not cited_docs:
        return None
    cited = [p for p in pool if p.chunk.doc_id in cited_docs]
    if not cited:
        return None
    floor = settings.min_relative_relevance * max(p.dense_score or 0.0 for p in cited)
    overlap = settings.min_relative_overlap * max(_overlap(query, p) for p in cited)
    others = [
        p
        for p in pool
        if p.chunk.doc_id not in cited_docs and (p.dense_score or 0.0) >= floor and _overlap(query, p) >= overlap
    ]
    if not others:
        return None
    best = max(others, key=lambda p: p.dense_score or 0.0)
    same_doc = tuple(p for p in pool if p.chunk.doc_id == best.chunk.doc_id)[: settings.max_passages]
    return Rival(best.chunk.doc_id, best.chunk.title, same_doc)


def _overlap(query: Query, passage: Passage) -> int:
    """How many of the question's content stems the passage holds."""
    return len(query.stems & set(content_stems(passage.text)))


def disagree(first: Span | None, second: Span | None) -> bool:
    """Whether two short answers name different things: neither holds the other's content stems."""
    if first is None or second is None:
        return False
    a, b = set(content_stems(first.text)), set(content_stems(second.text))
    return bool(a and b) and not (a <= b or b <= a)
