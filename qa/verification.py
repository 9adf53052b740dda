"""Deciding whether an answer may be shown: ordered, named checks, each refusing for one reason.

Two gates run before generation (is anything relevant; does the question take for granted a
name the documents never mention), and checks after it (did the model say it can't; is any
sentence supported by the passage it cites; are the cited passages about the question; does the
answer hold the kind of fact asked for; does it say more than the question; is a "who" answered
with a thing). Each returns a ``RefusalReason`` or ``None``;
the first refusal wins. Thresholds come from the settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from qa.citations import VerifiedAnswer, answer_phrase, parse_markers, strip_markers, verify_answer
from qa.entities import answers_with_things, wants_agent
from qa.query import Query
from qa.questions import has_expected_type, missing_premise_terms, says_not_found
from qa.settings import CitationSettings, ConfidenceSettings, RetrievalSettings
from qa.text import contains_stem, content_stems, words
from qa.types import Passage, RefusalReason


@dataclass(frozen=True)
class Gate:
    """The pre-generation verdict: refuse (and why), or go on to generate."""

    refusal: RefusalReason | None
    missing_terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Draft:
    """What the checks after generation look at."""

    query: Query
    raw: str
    passages: Sequence[Passage]
    verified: VerifiedAnswer
    background: Callable[[], Sequence[str]] | None = None  # the retrieved documents' texts, read when needed


@dataclass(frozen=True)
class Verdict:
    """The checked answer: ``verified`` text and citations, or the reason it is withheld."""

    refusal: RefusalReason | None
    verified: VerifiedAnswer
    confidence: float
    check_names: tuple[str, ...]
    features: Mapping[str, float]


Check = Callable[[Draft], RefusalReason | None]


def relevance_of(pool: Sequence[Passage]) -> float:
    """The best cosine similarity of the pool to the question (0 for an empty pool)."""
    return max((p.dense_score or 0.0 for p in pool), default=0.0)


def gate(
    query: Query,
    candidates: Sequence[Passage],
    pool: Sequence[Passage],
    settings: RetrievalSettings,
    in_corpus: Callable[[str], bool] | None = None,
) -> Gate:
    """Refuse before generating when nothing is relevant or the question's premise is not in the documents.
    Nothing relevant to a question that is not in English says so: the English-only search model,
    not the documents, is the likely reason."""
    if not pool or relevance_of(pool) < settings.min_dense_score:
        return Gate(RefusalReason.NO_RELEVANT_PASSAGE if query.english else RefusalReason.NOT_ENGLISH)
    searched = candidates[: max(len(pool) * 2, settings.premise_candidates)]
    missing = missing_premise_terms(query.text, searched, in_corpus)
    return Gate(RefusalReason.FALSE_PREMISE, tuple(missing)) if missing else Gate(None)


class Verifier:
    """Runs the post-generation checks in order; the answer's confidence comes with the verdict."""

    def __init__(self, citations: CitationSettings, confidence: ConfidenceSettings) -> None:
        self.settings = citations
        self.confidence = confidence
        self.checks: tuple[tuple[str, Check], ...] = (
            ("model_said_not_found", self._model_said_not_found),
            ("supported", self._supported),
            ("cited_on_topic", self._cited_on_topic),
            ("expected_kind", self._expected_kind),
            ("adds_to_question", self._adds_to_question),
            ("agent_not_thing", self._agent_not_thing),
        )

    def run(
        self,
        *,
        query: Query,
        raw: str,
        passages: Sequence[Passage],
        relevance: float,
        context: Mapping[str, str],
        background: Callable[[], Sequence[str]] | None = None,
    ) -> Verdict:
        """``background``: the texts of the documents retrieved for the question (what they say a name
        is), read only by a check that needs them."""
        verified = verify_answer(raw, passages, query.stems, min_support=self.settings.min_support, context=context)
        draft = Draft(query, raw, passages, verified, background)
        cited_ok = bool(parse_markers(raw)) and verified.reattributed == 0 and not verified.dropped
        features = {
            "relevance": round(relevance, 4),
            "support": round(verified.support, 4),
            "cited_ok": float(cited_ok),
            "yes_no": float(query.yes_no),
            "answer_words": float(len(words(strip_markers(verified.text)))),
        }
        names: list[str] = []
        for name, check in self.checks:
            names.append(name)
            if (reason := check(draft)) is not None:
                confidence = refusal_confidence(relevance, self.confidence)
                return Verdict(reason, verified, confidence, tuple(names), features)
        confidence = answer_confidence(relevance, verified.support, cited_ok, self.confidence)
        return Verdict(None, verified, confidence, tuple(names), features)

    @staticmethod
    def _model_said_not_found(draft: Draft) -> RefusalReason | None:
        return RefusalReason.MODEL_NOT_FOUND if says_not_found(draft.raw) else None

    @staticmethod
    def _supported(draft: Draft) -> RefusalReason | None:
        return None if draft.verified.citations else RefusalReason.UNSUPPORTED

    def _cited_on_topic(self, draft: Draft) -> RefusalReason | None:
        cited = {c.chunk_id for c in draft.verified.citations}
        best = max(p.score for p in draft.passages if p.chunk.id in cited)
        return RefusalReason.OFF_TOPIC if best < self.settings.min_relevance else None

    @staticmethod
    def _expected_kind(draft: Draft) -> RefusalReason | None:
        ok = has_expected_type(draft.query.kind, draft.verified.text, draft.query.text)
        return None if ok else RefusalReason.WRONG_KIND

    @staticmethod
    def _adds_to_question(draft: Draft) -> RefusalReason | None:
        """An answer (to other than a yes/no question) whose every content word is the question's own
        states nothing the question did not; mostly a false premise read back as a fact."""
        if draft.query.yes_no:
            return None
        said = content_stems(strip_markers(draft.verified.text))
        echoed = bool(said) and all(contains_stem(draft.query.stems, stem) for stem in said)
        return RefusalReason.RESTATES_QUESTION if echoed else None

    @staticmethod
    def _agent_not_thing(draft: Draft) -> RefusalReason | None:
        """A question asking who is not answered with names the passages introduce as things (qa.entities)."""
        if not wants_agent(draft.query.text):
            return None
        short = answer_phrase(draft.verified.text, draft.query.stems) or strip_markers(draft.verified.text)
        texts = [p.chunk.text for p in draft.passages] + list(draft.background() if draft.background else [])
        return RefusalReason.WRONG_KIND if answers_with_things(short, draft.query.text, texts) else None


def _scaled(relevance: float, settings: ConfidenceSettings) -> float:
    return float(min(max((relevance - settings.relevance_floor) / settings.relevance_span, 0.0), 1.0))


def answer_confidence(relevance: float, support: float, cited_ok: bool, settings: ConfidenceSettings) -> float:
    """How sure an answer is, from the pool's relevance, its citations' support and whether its own markers held."""
    s = settings
    value = s.base + s.relevance_weight * support * _scaled(relevance, s) + s.support_weight * support
    return round(value + (s.cited_bonus if cited_ok else 0.0), 3)


def refusal_confidence(relevance: float, settings: ConfidenceSettings) -> float:
    """How sure a refusal is: higher the less relevant the best passage was."""
    return round(settings.refusal_base + settings.refusal_weight * (1 - _scaled(relevance, settings)), 3)
