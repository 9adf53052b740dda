"""Hybrid retrieval: dense (FAISS) and keyword (BM25) candidates fused by reciprocal rank.

A search can be scoped to some documents (``doc_ids``): the candidate pool is widened in proportion
to how small a share of the index those documents hold, and the fused ranking is then filtered, so a
small document still gets its passages. The filter lives here, above the ``SnapshotReader`` protocol,
so it works the same for both index backends.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import numpy as np

from qa.embedding import Embedder
from qa.index import IndexReader, SnapshotReader
from qa.settings import RetrievalSettings
from qa.types import Chunk, Passage


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], k: int) -> dict[int, float]:
    """``sum(1 / (k + rank))`` over the rankings an id appears in (ranks start at 1)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return fused


class HybridRetriever:
    """Top ``candidates`` from each retriever, fused with RRF; every passage gets its cosine score."""

    def __init__(self, index: IndexReader, embedder: Embedder, settings: RetrievalSettings | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings if settings is not None else RetrievalSettings.model_validate({})

    def warm_up(self) -> None:
        self.embedder.warm_up()

    def run(self, *, query: str, top_k: int | None = None, doc_ids: Collection[str] | None = None) -> list[Passage]:
        if not query.strip():
            return []
        vector = self.embedder.embed([query])[0]
        return self.search(query, vector, top_k=top_k, doc_ids=doc_ids)

    def search(
        self,
        query: str,
        query_vector: np.ndarray,
        *,
        top_k: int | None = None,
        doc_ids: Collection[str] | None = None,
    ) -> list[Passage]:
        """:meth:`run` with the query already embedded (the part that must stay fast).

        With ``doc_ids``, only passages of those documents are returned (an empty collection or
        ``None``: all documents; ids not in the index match nothing)."""
        top_k = top_k or self.settings.top_k
        scope = frozenset(doc_ids) if doc_ids else None
        with self.index.snapshot() as snapshot:
            return self._search(snapshot, query, query_vector, top_k, scope)

    def _search(
        self,
        snapshot: SnapshotReader,
        query: str,
        query_vector: np.ndarray,
        top_k: int,
        scope: frozenset[str] | None = None,
    ) -> list[Passage]:
        if len(snapshot) == 0:
            return []
        q = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(q))
        q = q / norm if norm > 0 else q
        n = max(self.settings.candidates, top_k)
        if scope is not None:
            n = widened_pool(n, len(snapshot), _chunks_in(snapshot, scope))
            if n == 0:
                return []

        dense = snapshot.dense_search(q, n)
        sparse = snapshot.sparse_search(query, n)
        fused = reciprocal_rank_fusion([dense, sparse], self.settings.rrf_k)

        dense_rank = {i: r for r, i in enumerate(dense, start=1)}
        sparse_rank = {i: r for r, i in enumerate(sparse, start=1)}
        missing = len(dense) + len(sparse) + 1
        ranked = sorted(fused, key=lambda i: (-fused[i], dense_rank.get(i, missing), sparse_rank.get(i, missing), i))
        if scope is None:
            best = ranked[:top_k]
            chunks = snapshot.chunks(best) if best else []
        else:
            best, chunks = _first_in_scope(snapshot, ranked, scope, top_k)
        if not best:
            return []
        cosines = snapshot.vectors(np.array(best, dtype=np.int64)) @ q
        return [
            Passage(
                chunk=chunk,
                score=fused[i],
                dense_rank=dense_rank.get(i),
                sparse_rank=sparse_rank.get(i),
                dense_score=float(cos),
            )
            for i, chunk, cos in zip(best, chunks, cosines, strict=True)
        ]


def widened_pool(n: int, total: int, in_scope: int) -> int:
    """How many candidates to take from each retriever so that ``n`` of them can come from documents
    holding ``in_scope`` of the ``total`` chunks: ``n`` scaled by ``total / in_scope``, at most all
    chunks (0 when the scope holds none)."""
    if in_scope <= 0 or total <= 0:
        return 0
    return min(total, max(n, math.ceil(n * total / in_scope)))


def _chunks_in(snapshot: SnapshotReader, scope: frozenset[str]) -> int:
    """How many chunks the documents of ``scope`` hold."""
    return sum(info.n_chunks for info in snapshot.documents() if info.doc_id in scope)


def _first_in_scope(
    snapshot: SnapshotReader, ranked: Sequence[int], scope: frozenset[str], top_k: int
) -> tuple[list[int], list[Chunk]]:
    """The first ``top_k`` ids of ``ranked`` whose chunk belongs to a document of ``scope``, with
    their chunks; the chunks are read in batches, so a scope that ranks high costs one read."""
    ids: list[int] = []
    chunks: list[Chunk] = []
    batch = max(4 * top_k, 32)
    for at in range(0, len(ranked), batch):
        window = list(ranked[at : at + batch])
        for i, chunk in zip(window, snapshot.chunks(window), strict=True):
            if chunk.doc_id in scope:
                ids.append(i)
                chunks.append(chunk)
                if len(ids) == top_k:
                    return ids, chunks
    return ids, chunks
