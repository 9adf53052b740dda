"""The question-answering pipeline: retrieve, focus, generate, verify, or refuse.

``Assistant`` holds the opened index and the loaded models so that they are reused
across questions; ``ask()`` uses a lazily built default one.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa import prompts
from qa.citations import cite, parse_markers, strip_markers, verify_answer
from qa.context import ContextSelector, best_sentence
from qa.embedding import Embedder, create_embedder
from qa.generation import Generator, create_generator, generate
from qa.questions import (
    FOLLOW_UP,
    expected_type,
    has_expected_type,
    is_yes_no,
    missing_premise_terms,
    says_not_found,
    split_question,
)
from qa.settings import Settings, load_settings
from qa.text import words
from qa.types import Answer, Citation, Passage

if TYPE_CHECKING:
    from qa.index import BuildReport, Index
    from qa.retrieval import HybridRetriever

History = Sequence[tuple[str, str]]


class QuestionError(ValueError):
    """The question cannot be answered as given (empty, for example); the message says why."""


class Assistant:
    """Answers questions from the indexed documents, with verified citations."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        index: Index | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.embedder = embedder or create_embedder(self.settings.embedding.model, self.settings.embedding.batch_size)
        self.generator = generator or create_generator(self.settings.generation, self.settings.paths.cache)
        self._index = index
        self._retriever: HybridRetriever | None = None
        self.selector = ContextSelector(
            self.embedder, self.settings.generation.context_words, idf=lambda word: self.index.idf(word)
        )
        self._lock = threading.RLock()

    # -- lifecycle -----------------------------------------------------------------
    def warm_up(self, *, prime: bool = True) -> None:
        """Load the embedder and generator and open the index (building it over seeds/ if absent).

        With ``prime`` the fixed system prompt is run through the generator once, so that the
        first real question already finds it in the key/value cache.
        """
        failures: list[BaseException] = []

        def load_generator() -> None:
            try:
                self.generator.warm_up()
            except BaseException as exc:  # re-raised below, in the caller's thread
                failures.append(exc)

        # The generator loads (and its weights are hash-checked) in C code that releases the GIL,
        # so it overlaps with importing and loading the embedding model.
        loader = threading.Thread(target=load_generator, name="qa-generator-load", daemon=True)
        loader.start()
        try:
            self.embedder.warm_up()
            self._open_index()
        finally:
            loader.join()
        if failures:
            raise failures[0]
        if prime:
            generate(self.generator, prompts.answer_messages("?", [("", "-")]), max_tokens=1)

    @property
    def index(self) -> Index:
        return self._open_index()

    def _open_index(self) -> Index:
        with self._lock:
            if self._index is None:
                from qa.index import Index, IndexNotFound, build_index

                folder = self.settings.paths.index
                try:
                    self._index = Index.open(folder, self.settings, self.embedder)
                except IndexNotFound:
                    seeds = self.settings.paths.seeds
                    if not seeds.is_dir() or not any(seeds.iterdir()):
                        raise FileNotFoundError(
                            f"No index in {folder}/ and no documents in {seeds}/: put documents in "
                            f"{seeds}/ and run `qa index`."
                        ) from None
                    build_index([seeds], self.settings, self.embedder, progress=False)
                    self._index = Index.open(folder, self.settings, self.embedder)
                self._retriever = None
            return self._index

    @property
    def retriever(self) -> HybridRetriever:
        index = self._open_index()
        if self._retriever is None:
            from qa.retrieval import HybridRetriever

            self._retriever = HybridRetriever(index, self.embedder, self.settings.retrieval)
        return self._retriever

    def add_documents(self, paths: Sequence[Path]) -> BuildReport:
        report = self.index.add_paths(list(paths))
        self._retriever = None
        return report

    def remove_documents(self, doc_ids: Sequence[str]) -> BuildReport:
        report = self.index.remove_documents(list(doc_ids))
        self._retriever = None
        return report

    # -- asking --------------------------------------------------------------------
    def ask(self, question: str, *, history: History | None = None, top_k: int | None = None) -> Answer:
        """Answer ``question`` (a follow-up when ``history`` is given) with verified citations."""
        answer: Answer | None = None
        for item in self.ask_stream(question, history=history, top_k=top_k):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        return answer

    def ask_stream(
        self, question: str, *, history: History | None = None, top_k: int | None = None
    ) -> Iterator[str | Answer]:
        """Yield the answer text as it is generated, then the final verified ``Answer``."""
        started = time.perf_counter()
        timings: dict[str, float] = {}
        notes: list[str] = []
        question = self._validate(question, notes)
        standalone = question
        if history:
            t = time.perf_counter()
            standalone = self.rewrite(question, history)
            timings["rewrite"] = time.perf_counter() - t

        parts = split_question(standalone)
        results: list[Answer] = []
        for i, part in enumerate(parts):
            if i:
                yield " "
            sub = None
            for item in self._answer_one(part, top_k=top_k, timings=timings):
                if isinstance(item, Answer):
                    sub = item
                else:
                    yield item
            assert sub is not None
            results.append(sub)
        answer = results[0] if len(results) == 1 else merge_answers(standalone, results)
        answer.question = question
        answer.standalone_question = standalone if standalone != question else None
        answer.notes = notes + answer.notes
        timings["total"] = time.perf_counter() - started
        answer.timings = timings
        yield answer

    def _validate(self, question: str, notes: list[str]) -> str:
        if not isinstance(question, str):
            raise QuestionError("The question must be text.")
        cleaned = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in question)
        cleaned = " ".join(cleaned.split())
        if not cleaned:
            raise QuestionError("The question is empty: type a question about your documents.")
        limit = self.settings.generation.max_question_chars
        if len(cleaned) > limit:
            notes.append(f"The question was {len(cleaned):,} characters long; only the first {limit:,} were used.")
            cleaned = cleaned[:limit]
        return cleaned

    def rewrite(self, question: str, history: History) -> str:
        """Turn a follow-up ("and in AML?") into a standalone question using the conversation."""
        if not FOLLOW_UP.search(question):
            return question  # already standalone: no model call, and the cached prompt prefix stays warm
        text = generate(self.generator, prompts.rewrite_messages(question, history), max_tokens=48)
        text = strip_markers(text).strip().strip('"').splitlines()[0] if text.strip() else ""
        if len(words(text)) < 3 or len(text) > 400:
            return f"{history[-1][0]} {question}"
        return text

    def _answer_one(self, question: str, *, top_k: int | None, timings: dict[str, float]) -> Iterator[str | Answer]:
        settings = self.settings
        k = top_k or settings.retrieval.top_k
        t = time.perf_counter()
        candidates = self.retriever.run(query=question, top_k=max(k, settings.retrieval.candidates))
        pool = candidates[:k]
        _add(timings, "retrieval", time.perf_counter() - t)
        relevance = max((p.dense_score or 0.0 for p in pool), default=0.0)

        if not pool or relevance < settings.retrieval.min_dense_score:
            yield self._refusal(question, pool, relevance, "No passage of the documents is relevant.")
            return
        missing = missing_premise_terms(question, candidates[: max(k * 2, 8)], self.index.mentions)
        if missing:
            yield self._false_premise(question, pool, relevance, missing)
            return

        t = time.perf_counter()
        expanded = self._with_neighbours(pool)
        wants = expected_type(question)
        passages = self.selector.run(question=question, pool=expanded, wants_number=wants in ("number", "date"))
        context = {p.chunk.id: p.chunk.text for p in expanded}
        _add(timings, "focus", time.perf_counter() - t)
        several_docs = len({p.chunk.doc_id for p in passages}) > 1
        messages = prompts.answer_messages(
            question,
            [(p.chunk.title if several_docs else "", p.text) for p in passages],
            yes_no=is_yes_no(question),
        )
        raw_parts: list[str] = []
        for delta in self.generator.stream(messages, max_tokens=settings.generation.max_tokens):
            raw_parts.append(delta)
            yield delta
        raw = "".join(raw_parts).strip()
        stats = self.generator.last_stats
        _add(timings, "prompt", stats.prompt_seconds)
        _add(timings, "decode", stats.decode_seconds)
        _add(timings, "prompt_tokens", float(stats.prompt_tokens))
        _add(timings, "completion_tokens", float(stats.completion_tokens))

        t = time.perf_counter()
        answer = self._check(question, raw, passages, relevance, context)
        answer.passages = list(pool)
        _add(timings, "verify", time.perf_counter() - t)
        yield answer

    def _with_neighbours(self, pool: Sequence[Passage]) -> list[Passage]:
        """The pool plus the chunks adjacent to its two best chunks: an answer often sits across a boundary."""
        out = list(pool)
        have = {p.chunk.id for p in out}
        for passage in pool[:2]:
            for chunk in self.index.neighbours(passage.chunk, 1):
                if chunk.id not in have:
                    have.add(chunk.id)
                    out.append(replace(passage, chunk=chunk, sparse_rank=None, dense_rank=None))
        return out

    def _check(
        self,
        question: str,
        raw: str,
        passages: Sequence[Passage],
        relevance: float,
        context: Mapping[str, str] | None = None,
    ) -> Answer:
        if says_not_found(raw):
            return self._refusal(question, passages, relevance, "The passages do not state the answer.", raw)
        verified = verify_answer(
            raw, passages, question, min_support=self.settings.citations.min_support, context=context
        )
        if not verified.citations:
            reason = "The answer was not supported by the passages."
            return self._refusal(question, passages, relevance, reason, raw)
        cited = {c.chunk_id for c in verified.citations}
        if max(p.score for p in passages if p.chunk.id in cited) < self.settings.citations.min_relevance:
            reason = "The cited passages are not about the question."
            return self._refusal(question, passages, relevance, reason, raw)
        if not has_expected_type(expected_type(question), verified.text, question):
            reason = "The passages do not contain that kind of fact."
            return self._refusal(question, passages, relevance, reason, raw)
        cited_ok = bool(parse_markers(raw)) and verified.reattributed == 0 and not verified.dropped
        confidence = _confidence(relevance, verified.support, cited_ok)
        return Answer(
            question=question,
            text=verified.text,
            citations=verified.citations,
            refused=False,
            confidence=confidence,
            passages=list(passages),
            raw_text=raw,
            notes=[f"Removed unsupported: {d}" for d in verified.dropped],
        )

    def _refusal(
        self, question: str, passages: Sequence[Passage], relevance: float, reason: str, raw: str | None = None
    ) -> Answer:
        return Answer(
            question=question,
            text=prompts.REFUSAL_TEXT,
            refused=True,
            confidence=round(0.55 + 0.4 * (1 - _scale(relevance)), 3),
            passages=list(passages),
            refusal_reason=reason,
            raw_text=raw,
        )

    def _false_premise(
        self, question: str, passages: Sequence[Passage], relevance: float, missing: list[str]
    ) -> Answer:
        """Refuse, and say what the documents do say about the rest of the question, cited."""
        answer = self._refusal(question, passages, relevance, f"Not in the documents: {', '.join(missing)}.")
        found = best_sentence(question, passages[:3])
        if found is None:
            return answer
        chunk, start, end = found
        citation = cite(1, chunk, start, end)
        terms = ", ".join(f"“{m}”" for m in missing)
        answer.text = f"{prompts.FALSE_PREMISE_TEXT.format(terms=terms)} {citation.quote.strip()} [1]"
        answer.citations = [citation]
        return answer


def _shift_markers(text: str, shift: int) -> str:
    return re.sub(r"\[(\d+)\]", lambda m: f"[{int(m.group(1)) + shift}]", text)


def merge_answers(question: str, parts: Sequence[Answer]) -> Answer:
    """One answer from the answers to a question's parts, citations renumbered."""
    texts: list[str] = []
    citations: list[Citation] = []
    for part in parts:
        shift = len(citations)
        texts.append(_shift_markers(part.text, shift))
        citations.extend(replace(c, n=c.n + shift) for c in part.citations)
    answered = [p for p in parts if not p.refused]
    return Answer(
        question=question,
        text=" ".join(texts),
        citations=citations,
        refused=not answered,
        confidence=min(p.confidence for p in parts),
        passages=[p for part in parts for p in part.passages],
        refusal_reason=None if answered else "; ".join(filter(None, (p.refusal_reason for p in parts))),
        raw_text=" ".join(p.raw_text or "" for p in parts),
        notes=[n for p in parts for n in p.notes],
    )


def _scale(relevance: float) -> float:
    return float(min(max((relevance - 0.2) / 0.5, 0.0), 1.0))


def _confidence(relevance: float, support: float, cited_ok: bool) -> float:
    return round(0.25 + 0.35 * support * _scale(relevance) + 0.25 * support + (0.1 if cited_ok else 0.0), 3)


def _add(timings: dict[str, float], key: str, value: float) -> None:
    timings[key] = timings.get(key, 0.0) + value


_default: Assistant | None = None
_default_lock = threading.Lock()


def default_assistant() -> Assistant:
    global _default
    with _default_lock:
        if _default is None:
            _default = Assistant()
            _default.warm_up(prime=False)  # load both models at once; no priming for a one-off question
        return _default


def ask(question: str, *, history: History | None = None, **kwargs: Any) -> Answer:
    """Answer ``question`` from the indexed documents with the default assistant."""
    return default_assistant().ask(question, history=history, **kwargs)
