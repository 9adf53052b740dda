"""The question-answering pipeline: retrieve, focus, generate, verify, or refuse.

``Assistant`` holds the opened index and the loaded models so that they are reused
across questions; ``ask()`` uses a lazily built default one.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa import prompts
from qa.chunking import split_sentences
from qa.citations import critical_terms, parse_markers, strip_markers, verify_answer
from qa.embedding import Embedder, create_embedder
from qa.generation import Generator, create_generator, generate
from qa.settings import Settings, load_settings
from qa.text import QUESTION_WORDS, STOPWORDS, contains_stem, content_stems, words
from qa.types import Answer, Chunk, Citation, Passage

if TYPE_CHECKING:
    from qa.index import BuildReport, Index
    from qa.retrieval import HybridRetriever

History = Sequence[tuple[str, str]]


class QuestionError(ValueError):
    """The question cannot be answered as given (empty, for example); the message says why."""


_FOLLOW_UP = re.compile(
    r"^(and|what about|how about|also|but|or|then|so)\b|\b(it|its|they|them|that|this|those|these)\b", re.I
)
_SPLIT = re.compile(
    r"(?:,|;)?\s+and\s+(?=(?:what|which|who|whom|when|where|why|how|is|are|does|did|do)\b)"
    r"|\?\s+(?=\S)|;\s+",
    re.I,
)
_REFERS_BACK = re.compile(r"(it|its|this|these|that|those|they|their|such|the (drug|company|designation))\b", re.I)
_AUXILIARY = re.compile(
    r"(is|are|was|were|does|do|did|can|could|should|has|have|had|will|would|may|might|must)\b", re.I
)
_DEMONYM = re.compile(r"[a-z](ese|ian|an|ish)$")
_NUMBER_WORDS = frozenset(
    [
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "hundred",
        "thousand",
        "million",
        "billion",
        "percent",
        "half",
        "dozen",
        "first",
        "second",
        "third",
        "single",
        "double",
    ]
)
_MONTHS = frozenset(
    [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ]
)


def split_question(question: str) -> list[str]:
    """A question that asks two things ("Who X, and what Y?") as its parts; otherwise the question."""
    parts = [p.strip(" ,;") for p in _SPLIT.split(question) if p and p.strip(" ,;?")]
    parts = [p if p.endswith("?") else p + "?" for p in parts]
    if len(parts) < 2 or any(len(words(p)) < 3 for p in parts):
        return [question]
    return [p[0].upper() + p[1:] for p in parts]


def expected_type(question: str) -> str | None:
    """The kind of token a direct answer must contain: "number", "date" or "name"."""
    q = question.lower()
    if re.search(r"\bhow (many|much)\b|\bwhat (percentage|proportion|share|fraction|number|dose|rate)\b", q):
        return "number"
    if re.search(r"\b(what|which|in what) (year|date|month)\b|^when (was|were|did|will)\b", q):
        return "date"
    if re.search(r"^(who|where)\b|\b(which|what) (city|country|person|company|firm)\b", q):
        return "name"
    return None


def has_expected_type(kind: str | None, answer: str, question: str) -> bool:
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


def missing_premise_terms(question: str, passages: Sequence[Passage]) -> list[str]:
    """Names, acronyms and numbers in the question that no retrieved passage mentions.

    An acronym counts as mentioned when the passages spell it out, and a run of capitalised
    words when the passages use its initials ("Shanghai Stock Exchange" / "SSE").
    """
    text = " ".join(p.text for p in passages)
    stems = set(content_stems(text))
    initials = _initialisms(text)
    tokens = words(question)
    flagged: list[int] = []
    for i, token in enumerate(tokens):
        terms = critical_terms(("x " if i else "") + token)
        if i == 0 and not any(ch.isdigit() for ch in token) and sum(ch.isupper() for ch in token) < 2:
            continue
        if terms and not all(contains_stem(stems, t) for t in terms):
            if token.isupper() and token.lower() in initials:
                continue
            if _DEMONYM.search(token) and any(s.startswith(token.lower()[:4]) for s in stems):
                continue  # "Chinese" is about "China"
            flagged.append(i)
    acronyms = {w.lower() for w in words(text) if len(w) >= 2 and w.isupper()}
    missing: list[str] = []
    for run in _consecutive(flagged):
        acronym = "".join(tokens[i][0] for i in run).lower()
        if len(run) >= 2 and (acronym in stems or any(a.startswith(acronym[:2]) for a in acronyms)):
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
        self._sentence_cache: dict[str, np.ndarray] = {}
        self._lock = threading.RLock()

    # -- lifecycle -----------------------------------------------------------------
    def warm_up(self) -> None:
        """Load the embedder and generator and open the index (building it over seeds/ if absent)."""
        self.embedder.warm_up()
        self._open_index()
        self.generator.warm_up()

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
        if not _FOLLOW_UP.search(question) and len(words(question)) > 6:
            return question
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
        missing = missing_premise_terms(question, candidates[: max(k * 2, 8)])
        if missing:
            yield self._false_premise(question, pool, relevance, missing)
            return

        t = time.perf_counter()
        expanded = self._with_neighbours(pool)
        passages = self.select_context(question, expanded)
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

    def select_context(self, question: str, pool: Sequence[Passage]) -> list[Passage]:
        """The sentences of the retrieved chunks that best match the question, within the word budget.

        Each sentence is scored together with the sentence before it (so "It accounts for 6%"
        is found through the sentence naming "it"): embedding similarity to the question, plus
        the share of the question's content words present, plus the retrieval similarity of its
        chunk. The best are kept, with their predecessor when they start by referring back;
        each contiguous run of kept sentences becomes one tight passage with exact offsets.
        """
        budget = self.settings.generation.context_words
        units = _sentence_units(pool)
        if not units:
            return []
        texts = [u.text for u in units]
        windows = [(units[i - 1].text + " " if u.prev else "") + u.text for i, u in enumerate(units)]
        vectors = self._sentence_vectors(question, windows)
        asked = set(content_stems(question, drop=STOPWORDS | QUESTION_WORDS))
        lexical = np.array(
            [sum(contains_stem(set(content_stems(w)), a) for a in asked) / max(len(asked), 1) for w in windows]
        )
        chunk_sim = np.array([u.passage.dense_score or 0.0 for u in units])
        score = vectors[1:] @ vectors[0] + 0.3 * lexical + 0.3 * chunk_sim
        chosen: dict[int, float] = {}
        used = 0
        for j in sorted(range(len(units)), key=lambda j: -score[j]):
            wanted = [j - 1, j] if units[j].prev and _REFERS_BACK.match(texts[j]) else [j]
            wanted = [i for i in wanted if i not in chosen]
            size = sum(len(texts[i].split()) for i in wanted)
            if wanted and (not chosen or used + size <= budget):
                for i in wanted:
                    chosen[i] = float(score[j])
                used += size
        picked = sorted(chosen)
        return _runs([units[i] for i in picked], [chosen[i] for i in picked])

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

    def _sentence_vectors(self, question: str, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._sentence_cache]
        if missing:
            for text, vector in zip(missing, self.embedder.embed(missing), strict=True):
                self._sentence_cache[text] = vector
            while len(self._sentence_cache) > 20000:
                self._sentence_cache.pop(next(iter(self._sentence_cache)))
        query = self.embedder.embed([question])[0]
        return np.vstack([query, *(self._sentence_cache[t] for t in texts)])

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
        found = _best_sentence(question, passages[:3])
        if found is None:
            return answer
        chunk, start, end = found
        quote = chunk.text[start - chunk.start : end - chunk.start]
        terms = ", ".join(f"“{m}”" for m in missing)
        answer.text = f"{prompts.FALSE_PREMISE_TEXT.format(terms=terms)} {quote.strip()} [1]"
        answer.citations = [
            Citation(
                n=1,
                doc_id=chunk.doc_id,
                title=chunk.title,
                chunk_id=chunk.id,
                start=start,
                end=end,
                quote=quote,
                support=0.0,
            )
        ]
        return answer


def _best_sentence(question: str, passages: Sequence[Passage]) -> tuple[Chunk, int, int] | None:
    """The full sentence (not a heading) of the passages sharing most content words with the question."""
    asked = set(content_stems(question, drop=STOPWORDS | QUESTION_WORDS))
    best: tuple[float, int, Chunk, int, int] | None = None
    for rank, passage in enumerate(passages):
        chunk = passage.chunk
        for a, b in split_sentences(chunk.text):
            sentence = chunk.text[a:b]
            if len(sentence.split()) < 6 or sentence.rstrip()[-1:] not in '.!?"”':
                continue
            have = set(content_stems(sentence))
            overlap = sum(contains_stem(have, w) for w in asked)
            key = (overlap - 0.1 * rank, -(chunk.start + a))
            if best is None or key > (best[0], best[1]):
                best = (key[0], key[1], chunk, chunk.start + a, chunk.start + b)
    return None if best is None else (best[2], best[3], best[4])


@dataclass(frozen=True)
class _Unit:
    """One sentence of a retrieved chunk, in document offsets; ``prev``: the unit before it is adjacent."""

    passage: Passage
    start: int
    end: int
    text: str
    prev: bool


def _sentence_units(pool: Sequence[Passage]) -> list[_Unit]:
    """Every distinct non-heading sentence of the pool's chunks, in pool order."""
    seen: set[tuple[str, int]] = set()
    units: list[_Unit] = []
    for passage in pool:
        chunk = passage.chunk
        previous_end: int | None = None
        for a, b in split_sentences(chunk.text) or [(0, len(chunk.text))]:
            text = chunk.text[a:b]
            key = (chunk.doc_id, chunk.start + a)
            if _is_heading(text) or key in seen:
                previous_end = None
                continue
            seen.add(key)
            units.append(_Unit(passage, chunk.start + a, chunk.start + b, text, previous_end is not None))
            previous_end = b
    return units


def _is_heading(sentence: str) -> bool:
    stripped = sentence.strip()
    return len(stripped.split()) <= 14 and stripped[-1:] not in '.!?:;"”)' and "\n" not in stripped


def _runs(units: Sequence[_Unit], scores: Sequence[float]) -> list[Passage]:
    """Group chosen sentences into contiguous runs, one tight passage per run, best first."""
    by_chunk: dict[str, list[tuple[_Unit, float]]] = {}
    for unit, score in zip(units, scores, strict=True):
        by_chunk.setdefault(unit.passage.chunk.id, []).append((unit, score))
    runs: list[tuple[float, Passage]] = []
    for items in by_chunk.values():
        items.sort(key=lambda item: item[0].start)
        group = [items[0]]
        for item in items[1:]:
            if item[0].start - group[-1][0].end <= 2:
                group.append(item)
                continue
            runs.append(_run_passage(group))
            group = [item]
        runs.append(_run_passage(group))
    runs.sort(key=lambda r: -r[0])
    return [p for _, p in runs]


def _run_passage(group: Sequence[tuple[_Unit, float]]) -> tuple[float, Passage]:
    source = group[0][0].passage
    chunk = source.chunk
    start, end = group[0][0].start, group[-1][0].end
    text = chunk.text[start - chunk.start : end - chunk.start]
    score = max(g[1] for g in group)
    return score, replace(source, chunk=replace(chunk, text=text, start=start, end=end), score=score)


def merge_answers(question: str, parts: Sequence[Answer]) -> Answer:
    """One answer from the answers to a question's parts, citations renumbered."""
    texts: list[str] = []
    citations: list[Citation] = []
    for part in parts:
        shift = len(citations)
        texts.append(re.sub(r"\[(\d+)\]", lambda m, shift=shift: f"[{int(m.group(1)) + shift}]", part.text))
        citations.extend(Citation(**{**c.__dict__, "n": c.n + shift}) for c in part.citations)
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
        return _default


def ask(question: str, *, history: History | None = None, **kwargs: Any) -> Answer:
    """Answer ``question`` from the indexed documents with the default assistant."""
    return default_assistant().ask(question, history=history, **kwargs)
