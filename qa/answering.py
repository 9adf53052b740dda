"""The answer path for one analysed question: retrieve → gate → focus → generate → verify.

Each step is a component with its own job; ``AnswerPath`` only wires them and records how
long each took. A question with several parts is answered part by part, and ``build_answer``
makes the one ``Answer`` the caller sees, complete, from the parts.
"""

from __future__ import annotations

import collections.abc
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace

from qa import prompts
from qa.calibration import LabelPrior, Logistic
from qa.citations import answer_phrase, cite, locate_phrase, shift_markers, strip_markers
from qa.conflicts import disagree, rival_document
from qa.context import ContextSelector, Focus, best_sentence
from qa.generation import Choice, Generation, Generator, Messages, generate
from qa.query import Query, Question
from qa.questions import FOLLOW_UP, says_not_found
from qa.retrieval import HybridRetriever
from qa.settings import Settings
from qa.signals import PROBABILITY_SIGNALS, answer_signals, judged
from qa.text import words
from qa.types import Answer, Citation, Passage, RefusalReason, Span
from qa.verification import Verdict, Verifier, gate, refusal_confidence, relevance_of

History = Sequence[tuple[str, str]]
TextStream = collections.abc.Generator[str, None, Generation]  # text deltas, then returns the Generation


@dataclass(frozen=True)
class PartAnswer:
    """The answer to one part of a question, with the timings of its steps."""

    text: str
    refusal: RefusalReason | None
    refusal_reason: str | None
    confidence: float
    citations: tuple[Citation, ...] = ()
    passages: tuple[Passage, ...] = ()
    raw_text: str | None = None
    notes: tuple[str, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)
    signals: Mapping[str, float] = field(default_factory=dict)
    short: Span | None = None

    @property
    def refused(self) -> bool:
        return self.refusal is not None


@dataclass(frozen=True)
class Rewrite:
    text: str
    seconds: float


class Rewriter:
    """Turns a follow-up ("and in AML?") into a standalone question using the conversation."""

    def __init__(self, generator: Generator, settings: Settings) -> None:
        self.generator = generator
        self.max_tokens = settings.generation.rewrite_max_tokens
        self.max_chars = settings.generation.rewrite_max_chars

    def run(self, *, question: str, history: History) -> Rewrite:
        started = time.perf_counter()
        if not FOLLOW_UP.search(question):
            return Rewrite(question, 0.0)  # already standalone: no model call, the cached prefix stays warm
        text = generate(self.generator, prompts.rewrite_messages(question, history), max_tokens=self.max_tokens).text
        text = strip_markers(text).strip().strip('"').splitlines()[0] if text.strip() else ""
        if len(words(text)) < 3 or len(text) > self.max_chars:
            text = f"{history[-1][0]} {question}"
        return Rewrite(text, time.perf_counter() - started)


class AnswerPath:
    """Answers one ``Query`` from the index behind ``retriever``, streaming the model's text."""

    def __init__(
        self,
        *,
        retriever: HybridRetriever,
        selector: ContextSelector,
        generator: Generator,
        verifier: Verifier,
        settings: Settings,
        in_corpus: Callable[[str], bool] | None = None,
        prior: LabelPrior | None = None,
    ) -> None:
        self.prior = prior
        self.answer_model = Logistic(settings.confidence.answer_weights)
        self.refusal_model = Logistic(settings.confidence.refusal_weights)
        self.retriever = retriever
        self.selector = selector
        self.generator = generator
        self.verifier = verifier
        self.settings = settings
        self.in_corpus = in_corpus

    def run(self, *, query: Query, top_k: int, doc_ids: Collection[str] | None = None) -> Iterator[str | PartAnswer]:
        started = time.perf_counter()
        wanted = max(top_k, self.settings.retrieval.candidates)
        candidates = self.retriever.search(query.text, query.vector, top_k=wanted, doc_ids=doc_ids)
        pool = tuple(candidates[:top_k])
        timings = {"retrieval": time.perf_counter() - started}
        relevance = relevance_of(pool)
        verdict = gate(query, candidates, pool, self.settings.retrieval, self.in_corpus)
        if verdict.refusal is RefusalReason.FALSE_PREMISE:
            yield self._false_premise(query, pool, relevance, verdict.missing_terms, timings)
            return
        if verdict.refusal is not None:
            yield self._refusal(verdict.refusal, pool, relevance, timings)
            return
        focus = self.selector.run(query=query, pool=pool)
        timings["focus"] = focus.seconds
        choice = self.prior.choice() if query.yes_no and self.prior is not None else None
        messages = self._messages(query, focus.passages)
        generation = yield from self._generate(messages, choice)
        timings.update(_generation_timings(generation))
        signals = answer_signals(generation, choice)
        if self.settings.confidence.self_judge and signals and not says_not_found(generation.text):
            started = time.perf_counter()
            signals.update(judged(self.generator, messages, generation.text.strip()))
            timings["judge"] = time.perf_counter() - started
        part = self._checked(query, generation, signals, focus, pool, relevance, timings)
        yield self._with_conflict(query, part, pool, relevance) if not part.refused else part

    def _with_conflict(self, query: Query, part: PartAnswer, pool: tuple[Passage, ...], relevance: float) -> PartAnswer:
        """``part``, or, when the best other relevant document answers the question differently, ``part``
        followed by that document's answer, both cited, with lower confidence (see :mod:`qa.conflicts`)."""
        settings = self.settings.conflicts
        rival = rival_document(query, pool, {c.doc_id for c in part.citations}, settings)
        if rival is None or part.short is None:
            return part
        started = time.perf_counter()
        focus = self.selector.run(query=query, pool=rival.passages, budget_words=settings.context_words)
        generation = generate(
            self.generator, self._messages(query, focus.passages), max_tokens=self.settings.generation.max_tokens
        )
        raw = generation.text.strip()
        other = self._verify(query, raw, focus, pool, relevance)
        timings = {**part.timings, "conflict": time.perf_counter() - started}
        short = (
            shortest_span(other.verified.text, other.verified.citations, query.stems) if other.refusal is None else None
        )
        if short is None or not disagree(part.short, short):
            return replace(part, timings=timings)
        shift = len(part.citations)
        second = shift_markers(other.verified.text, shift)
        citations = (*part.citations, *(replace(c, n=c.n + shift) for c in other.verified.citations))
        note = f"The documents disagree: “{part.short.text}” against “{short.text}” in {rival.title}."
        return replace(
            part,
            text=f"{part.text} {prompts.CONFLICT_TEXT.format(title=rival.title)} {second}",
            citations=citations,
            confidence=round(part.confidence * settings.confidence_factor, 3),
            notes=(*part.notes, note),
            timings=timings,
            signals={**part.signals, "conflict": 1.0},
        )

    def _checked(
        self,
        query: Query,
        generation: Generation,
        signals: dict[str, float],
        focus: Focus,
        pool: tuple[Passage, ...],
        relevance: float,
        timings: dict[str, float],
    ) -> PartAnswer:
        """The generated answer after verification, with its calibrated confidence; withheld when a
        check fails or the confidence is below ``confidence.min_answer``."""
        started = time.perf_counter()
        raw = generation.text.strip()
        checked = self._verify(query, raw, focus, pool, relevance)
        timings["verify"] = time.perf_counter() - started
        signals = {**signals, **checked.features}
        if checked.refusal is not None:
            return self._refusal(checked.refusal, pool, relevance, timings, raw=raw, signals=signals)
        confidence = self.answer_model(signals) if _applies(self.answer_model, signals) else checked.confidence
        if confidence < self.settings.confidence.min_answer:
            refusal = self._refusal(RefusalReason.LOW_CONFIDENCE, pool, relevance, timings, raw=raw, signals=signals)
            return replace(refusal, confidence=round(1.0 - confidence, 3))
        citations = tuple(checked.verified.citations)
        return PartAnswer(
            text=checked.verified.text,
            refusal=None,
            refusal_reason=None,
            confidence=confidence,
            citations=citations,
            passages=pool,
            raw_text=raw,
            notes=tuple(f"Removed unsupported: {d}" for d in checked.verified.dropped),
            timings=timings,
            signals=signals,
            short=None if query.yes_no else shortest_span(checked.verified.text, citations, query.stems),
        )

    def _verify(self, query: Query, raw: str, focus: Focus, pool: Sequence[Passage], relevance: float) -> Verdict:
        """The verifier's verdict on ``raw``, an answer from ``focus``'s passages."""
        return self.verifier.run(
            query=query,
            raw=raw,
            passages=focus.passages,
            relevance=relevance,
            context=focus.context,
            background=lambda: self._documents_of(pool),
        )

    def _documents_of(self, pool: Sequence[Passage]) -> list[str]:
        """The whole texts of the documents ``pool`` comes from (what they say a name is)."""
        index = self.retriever.index
        return [index.get_document(doc_id).text for doc_id in dict.fromkeys(p.chunk.doc_id for p in pool)]

    def _messages(self, query: Query, passages: Sequence[Passage]) -> Messages:
        several_docs = len({p.chunk.doc_id for p in passages}) > 1
        shown = [(p.chunk.title if several_docs else "", p.text) for p in passages]
        return prompts.answer_messages(query.text, shown, yes_no=query.yes_no)

    def _generate(self, messages: Messages, choice: Choice | None) -> TextStream:
        """Stream the model's answer; returns (as a generator's value) the ``Generation``."""
        result: Generation | None = None
        for item in self.generator.stream(messages, max_tokens=self.settings.generation.max_tokens, choice=choice):
            if isinstance(item, Generation):
                result = item
            else:
                yield item
        if result is None:
            raise RuntimeError(f"{type(self.generator).__name__}.stream() ended without its final Generation")
        return result

    def _refusal(
        self,
        reason: RefusalReason,
        pool: tuple[Passage, ...],
        relevance: float,
        timings: Mapping[str, float],
        *,
        raw: str | None = None,
        signals: Mapping[str, float] | None = None,
    ) -> PartAnswer:
        signals = {"relevance": round(relevance, 4), **(signals or {}), "generated": float(raw is not None)}
        if _applies(self.refusal_model, signals, generated=raw is not None):
            confidence = self.refusal_model(signals)
        else:
            confidence = refusal_confidence(relevance, self.settings.confidence)
        return PartAnswer(
            prompts.REFUSAL_TEXT,
            reason,
            reason.message(),
            confidence,
            passages=pool,
            raw_text=raw,
            timings=timings,
            signals=signals,
        )

    def _false_premise(
        self,
        query: Query,
        pool: tuple[Passage, ...],
        relevance: float,
        missing: Sequence[str],
        timings: Mapping[str, float],
    ) -> PartAnswer:
        """Refuse, and say what the documents do say about the rest of the question, cited."""
        refusal = replace(
            self._refusal(RefusalReason.FALSE_PREMISE, pool, relevance, timings),
            refusal_reason=RefusalReason.FALSE_PREMISE.message(terms=", ".join(missing)),
        )
        found = best_sentence(query.stems, pool[:3])
        if found is None:
            return refusal
        citation = cite(1, *found)
        terms = ", ".join(f"“{m}”" for m in missing)
        text = f"{prompts.FALSE_PREMISE_TEXT.format(terms=terms)} {citation.quote.strip()} [1]"
        return replace(refusal, text=text, citations=(citation,))


def _applies(model: Logistic, signals: Mapping[str, float], *, generated: bool = True) -> bool:
    """Whether the fitted ``model`` fits these signals. Not when it weighs the model's token probabilities
    and a generation came without them (a backend that gives none, such as a remote server without
    logprobs): each missing one would count as 0, a log-probability of certainty. The formula is used then."""
    if not model:
        return False
    return not generated or "mean_logprob" in signals or not any(n in model.weights for n in PROBABILITY_SIGNALS)


def _generation_timings(generation: Generation) -> dict[str, float]:
    stats = generation.stats
    return {
        "prompt": stats.prompt_seconds,
        "decode": stats.decode_seconds,
        "prompt_tokens": float(stats.prompt_tokens),
        "cached_prompt_tokens": float(stats.cached_tokens),
        "completion_tokens": float(stats.completion_tokens),
    }


def shortest_span(text: str, citations: Sequence[Citation], asked: AbstractSet[str]) -> Span | None:
    """The answer's shortest words (``answer_phrase``), else the whole answer, as a span of the
    first cited sentence that holds them (``None`` if none does)."""
    phrases = [p for p in (answer_phrase(text, asked), strip_markers(text).rstrip(" .")) if p]
    for phrase in phrases:
        for citation in citations:
            if (span := locate_phrase(phrase, citation)) is not None:
                return span
    return None


def build_answer(question: Question, parts: Sequence[PartAnswer], timings: Mapping[str, float]) -> Answer:
    """The one ``Answer`` for ``question`` from the answers to its parts, citations renumbered in order."""
    texts: list[str] = []
    citations: list[Citation] = []
    answered = [p for p in parts if not p.refused]
    for query, part in zip(question.parts, parts, strict=True):
        shift = len(citations)
        text = shift_markers(part.text, shift) if shift else part.text
        if part.refused and answered:  # say which part the documents don't answer, not a bare contradiction
            text = prompts.REFUSED_PART_TEXT.format(part=query.text.rstrip(" ?"), text=text)
        texts.append(text)
        citations.extend(replace(c, n=c.n + shift) for c in part.citations)
    all_timings: dict[str, float] = {}
    for source in [*(p.timings for p in parts), timings]:
        for key, value in source.items():
            all_timings[key] = all_timings.get(key, 0.0) + value
    single = parts[0] if len(parts) == 1 else None
    refused_reasons = [p.refusal_reason for p in parts if p.refusal_reason]
    return Answer(
        question=question.asked,
        text=" ".join(texts if answered else dict.fromkeys(texts)),  # one "The documents don't say.", not two
        citations=citations,
        refused=not answered,
        confidence=min(p.confidence for p in parts),
        timings=all_timings,
        passages=[p for part in parts for p in part.passages],
        standalone_question=question.standalone if question.standalone != question.asked else None,
        refusal_reason=None if answered else "; ".join(refused_reasons),
        raw_text=single.raw_text if single else " ".join(p.raw_text or "" for p in parts),
        notes=[*question.notes, *(n for p in parts for n in p.notes)],
        refusal=None if answered else parts[0].refusal,
        signals=dict(_weakest(parts).signals),
        short=single.short if single else None,
    )


def _weakest(parts: Sequence[PartAnswer]) -> PartAnswer:
    """The part the model was least sure of (its signals speak for the whole answer)."""
    return min(parts, key=lambda p: p.signals.get("mean_logprob", 0.0))
