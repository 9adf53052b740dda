"""Plain typed records passed between the stages of the pipeline.

Every record is a dataclass with no behaviour beyond small derived properties, so
that any stage can be tested with hand-made values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class Page:
    """A page of a paginated source (PDF): ``text[start:end]`` of the document is that page."""

    number: int
    start: int
    end: int


@dataclass(frozen=True)
class Section:
    """A heading and the span of cleaned text it governs."""

    heading: str
    start: int
    end: int


@dataclass(frozen=True)
class Document:
    """A cleaned source document.

    ``id`` is stable across runs (derived from the path relative to the ingest root),
    ``text`` is the cleaned text that every offset in the system refers to, and
    ``content_hash`` is the SHA-256 of the raw file bytes.
    """

    id: str
    title: str
    text: str
    source: str
    content_hash: str
    pages: tuple[Page, ...] = ()
    sections: tuple[Section, ...] = ()

    def page_at(self, offset: int) -> int | None:
        for page in self.pages:
            if page.start <= offset < page.end:
                return page.number
        return None

    def section_at(self, offset: int) -> str | None:
        current: str | None = None
        for section in self.sections:
            if section.start <= offset < section.end:
                current = section.heading
        return current


@dataclass(frozen=True)
class Chunk:
    """A run of whole sentences of one document; ``doc.text[start:end] == text``."""

    id: str
    doc_id: str
    title: str
    text: str
    start: int
    end: int
    ordinal: int
    section: str | None = None
    page: int | None = None


@dataclass(frozen=True)
class Passage:
    """A chunk as returned by retrieval, with its fused score and per-retriever ranks."""

    chunk: Chunk
    score: float
    dense_rank: int | None = None
    sparse_rank: int | None = None
    dense_score: float | None = None

    @property
    def text(self) -> str:
        return self.chunk.text


@dataclass(frozen=True)
class Citation:
    """A verified pointer from an answer to the exact span of a document that supports it."""

    n: int
    doc_id: str
    title: str
    chunk_id: str
    start: int
    end: int
    quote: str
    support: float


@dataclass(frozen=True)
class Span:
    """The shortest phrase that answers: ``text`` is ``doc.text[start:end]`` of document ``doc_id``,
    inside the sentence quoted by citation ``n``, which proves it."""

    text: str
    doc_id: str
    start: int
    end: int
    n: int


class RefusalReason(StrEnum):
    """Why an answer was withheld: a stable code (in JSON and reports), with a message for people."""

    NO_RELEVANT_PASSAGE = "no_relevant_passage"
    FALSE_PREMISE = "false_premise"
    MODEL_NOT_FOUND = "model_not_found"
    UNSUPPORTED = "unsupported"
    OFF_TOPIC = "off_topic"
    WRONG_KIND = "wrong_kind"
    RESTATES_QUESTION = "restates_question"
    LOW_CONFIDENCE = "low_confidence"
    NOT_ENGLISH = "not_english"

    def message(self, **details: str) -> str:
        """The sentence shown to the user; ``FALSE_PREMISE`` takes ``terms``."""
        text = _REFUSAL_MESSAGES[self]
        return text.format(**details) if details else text


_REFUSAL_MESSAGES: dict[RefusalReason, str] = {
    RefusalReason.NO_RELEVANT_PASSAGE: "No passage of the documents is relevant.",
    RefusalReason.FALSE_PREMISE: "Not in the documents: {terms}.",
    RefusalReason.MODEL_NOT_FOUND: "The passages do not state the answer.",
    RefusalReason.UNSUPPORTED: "The answer was not supported by the passages.",
    RefusalReason.OFF_TOPIC: "The cited passages are not about the question.",
    RefusalReason.WRONG_KIND: "The passages do not contain that kind of fact.",
    RefusalReason.RESTATES_QUESTION: "The model only repeated the question.",
    RefusalReason.LOW_CONFIDENCE: "The model was too unsure of its answer to show it.",
    RefusalReason.NOT_ENGLISH: (
        "Questions in English work best: the search model here reads English only, so this question "
        "matched no passage. Please ask it in English."
    ),
}


@dataclass(frozen=True)
class Answer:
    """What ``ask()`` returns: the answer text with ``[n]`` markers and its proof.

    ``refusal`` says which check withheld the answer (``None`` when answered), and
    ``refusal_reason`` is its message as shown to the user. ``signals`` holds what the model's
    own token probabilities said about its answer (``qa.signals``), where the backend gives them.
    ``short`` is the shortest phrase that answers, a span of the document inside the sentence
    its citation quotes (``None`` for refusals, yes/no answers and answers in several parts).
    """

    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    refused: bool = False
    confidence: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    passages: list[Passage] = field(default_factory=list)
    standalone_question: str | None = None
    refusal_reason: str | None = None
    raw_text: str | None = None
    notes: list[str] = field(default_factory=list)
    refusal: RefusalReason | None = None
    signals: dict[str, float] = field(default_factory=dict)
    short: Span | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
