"""Choosing what the generator reads: the best sentences of the retrieved chunks, as tight passages.

Each sentence is scored on its own and together with the sentence before it (so "It accounts
for 6%" is found through the sentence naming "it"), taking the better of the two: embedding
similarity to the question plus the share of the question's content words present; the
retrieval similarity of its chunk is added. The best are kept
within a word budget, with their predecessor when they start by referring back; each contiguous
run of kept sentences becomes one tight passage with exact document offsets.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace

import numpy as np

from qa.chunking import split_sentences
from qa.embedding import Embedder
from qa.query import Query
from qa.settings import FocusSettings
from qa.text import QUESTION_WORDS, STOPWORDS, contains_stem, content_stems, words
from qa.types import Chunk, Passage

_REFERS_BACK = re.compile(r"(it|its|this|these|that|those|they|their|such|the (drug|company|designation))\b", re.I)


def _overlap(asked: dict[str, float], text: str) -> float:
    """Weighted share of the question's content stems found in ``text`` (weights: rarity)."""
    have = set(content_stems(text))
    total = sum(asked.values())
    return sum(w for a, w in asked.items() if contains_stem(have, a)) / total if total else 0.0


@dataclass(frozen=True)
class Focus:
    """What the generator reads: tight sentence passages, and the whole text of each chunk they came from."""

    passages: tuple[Passage, ...]
    context: Mapping[str, str]
    seconds: float


class ContextSelector:
    """Picks the question's best sentences from the retrieved chunks and their neighbours.

    ``neighbours(chunk, n)`` gives the chunks next to a chunk (the index's); the best
    ``neighbour_chunks`` chunks of the pool bring theirs in, since an answer often sits across a
    chunk boundary. Sentence embeddings are cached.
    """

    def __init__(
        self,
        embedder: Embedder,
        budget_words: int,
        *,
        weights: FocusSettings | None = None,
        idf: Callable[[str], float] | None = None,
        neighbours: Callable[[Chunk, int], Sequence[Chunk]] | None = None,
        neighbour_chunks: int = 2,
        cache_size: int = 20000,
    ) -> None:
        self.embedder = embedder
        self.budget_words = budget_words
        self.weights = weights or FocusSettings()
        self.idf = idf
        self.neighbours = neighbours
        self.neighbour_chunks = neighbour_chunks
        self.cache_size = cache_size
        self._cache: dict[str, np.ndarray] = {}

    def warm_up(self) -> None:
        self.embedder.warm_up()

    def run(self, *, query: Query, pool: Sequence[Passage], budget_words: int | None = None) -> Focus:
        """The best sentences of ``pool`` and its neighbours within ``budget_words`` (default: the
        selector's budget)."""
        started = time.perf_counter()
        expanded = self.with_neighbours(pool)
        passages = self.select(query=query, pool=expanded, budget_words=budget_words)
        context = {p.chunk.id: p.chunk.text for p in expanded}
        return Focus(tuple(passages), context, time.perf_counter() - started)

    def with_neighbours(self, pool: Sequence[Passage]) -> list[Passage]:
        """The pool plus the chunks adjacent to its best ``neighbour_chunks`` chunks."""
        out = list(pool)
        if self.neighbours is None:
            return out
        have = {p.chunk.id for p in out}
        for passage in pool[: self.neighbour_chunks]:
            for chunk in self.neighbours(passage.chunk, 1):
                if chunk.id not in have:
                    have.add(chunk.id)
                    out.append(replace(passage, chunk=chunk, sparse_rank=None, dense_rank=None))
        return out

    def select(self, *, query: Query, pool: Sequence[Passage], budget_words: int | None = None) -> list[Passage]:
        """The best sentences of ``pool`` within the word budget, as tight passages, best first."""
        budget = self.budget_words if budget_words is None else budget_words
        units = _sentence_units(pool)
        if not units:
            return []
        texts = [u.text for u in units]
        windows = [(units[i - 1].text + " " if u.prev else "") + u.text for i, u in enumerate(units)]
        score = self._scores(query, units, texts, windows)
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

    def _scores(self, query: Query, units: Sequence[_Unit], texts: list[str], windows: list[str]) -> np.ndarray:
        """Each sentence's score: the better of it alone and with its predecessor, plus its chunk's similarity."""
        w = self.weights
        dense = self._vectors(texts + windows) @ query.vector
        asked = self._weights(query.text)
        lexical = np.array([_overlap(asked, t) for t in texts + windows])
        n = len(units)
        own = dense[:n] + w.lexical_weight * lexical[:n]
        with_previous = dense[n:] + w.lexical_weight * lexical[n:]
        chunk_sim = np.array([u.passage.dense_score or 0.0 for u in units])
        score = np.maximum(own, with_previous) + w.chunk_weight * chunk_sim
        if query.wants_number:
            score += np.array([w.number_bonus if any(ch.isdigit() for ch in t) else 0.0 for t in texts])
        return score

    def _weights(self, question: str) -> dict[str, float]:
        """The question's content stems, weighted by how rare each is in the documents."""
        weights: dict[str, float] = {}
        for word in words(question):
            stems = content_stems(word, drop=STOPWORDS | QUESTION_WORDS)
            if stems:
                weights[stems[0]] = max(weights.get(stems[0], 0.0), self.idf(word) if self.idf else 1.0)
        return weights

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            for text, vector in zip(missing, self.embedder.embed(missing), strict=True):
                self._cache[text] = vector
            while len(self._cache) > self.cache_size:
                self._cache.pop(next(iter(self._cache)))
        return np.vstack([self._cache[t] for t in texts])


@dataclass(frozen=True)
class _Unit:
    """One sentence of a retrieved chunk, in document offsets; ``prev``: the unit before it is adjacent."""

    passage: Passage
    start: int
    end: int
    text: str
    prev: bool


def _sentence_units(pool: Sequence[Passage]) -> list[_Unit]:
    """Every distinct sentence of the pool's chunks, in pool order.

    A short line without final punctuation (a heading, or a label such as "US Brand Name(s)")
    is joined to the sentence after it rather than standing alone.
    """
    seen: set[tuple[str, int]] = set()
    units: list[_Unit] = []
    for passage in pool:
        chunk = passage.chunk
        previous_end: int | None = None
        pending: int | None = None
        for a, b in split_sentences(chunk.text) or [(0, len(chunk.text))]:
            if _is_heading(chunk.text[a:b]) and pending is None:
                pending = a
                continue
            start, pending = (a if pending is None else pending), None
            key = (chunk.doc_id, chunk.start + start)
            if key in seen:
                previous_end = None
                continue
            seen.add(key)
            text = chunk.text[start:b]
            units.append(_Unit(passage, chunk.start + start, chunk.start + b, text, previous_end is not None))
            previous_end = b
    return units


def _is_heading(sentence: str) -> bool:
    stripped = sentence.strip()
    return len(stripped.split()) <= 12 and stripped[-1:] not in '.!?:;"”' and "\n" not in stripped


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


def best_sentence(asked: AbstractSet[str], passages: Sequence[Passage]) -> tuple[Chunk, int, int] | None:
    """The full sentence (not a heading) of the passages sharing most of the question's stems ``asked``."""
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
