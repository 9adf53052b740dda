"""Hybrid retrieval: dense (FAISS) and keyword (BM25) candidates fused by reciprocal rank."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qa.embedding import Embedder
from qa.index import IndexReader, SnapshotReader
from qa.settings import RetrievalSettings
from qa.types import Passage


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

    def run(self, *, query: str, top_k: int | None = None) -> list[Passage]:
        if not query.strip():
            return []
        vector = self.embedder.embed([query])[0]
        return self.search(query, vector, top_k=top_k)

    def search(self, query: str, query_vector: np.ndarray, *, top_k: int | None = None) -> list[Passage]:
        """:meth:`run` with the query already embedded (the part that must stay fast)."""
        top_k = top_k or self.settings.top_k
        with self.index.snapshot() as snapshot:
            return self._search(snapshot, query, query_vector, top_k)

    def _search(self, snapshot: SnapshotReader, query: str, query_vector: np.ndarray, top_k: int) -> list[Passage]:
        if len(snapshot) == 0:
            return []
        q = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(q))
        q = q / norm if norm > 0 else q
        n = max(self.settings.candidates, top_k)

        dense = snapshot.dense_search(q, n)
        sparse = snapshot.sparse_search(query, n)
        fused = reciprocal_rank_fusion([dense, sparse], self.settings.rrf_k)

        dense_rank = {i: r for r, i in enumerate(dense, start=1)}
        sparse_rank = {i: r for r, i in enumerate(sparse, start=1)}
        missing = len(dense) + len(sparse) + 1
        best = sorted(fused, key=lambda i: (-fused[i], dense_rank.get(i, missing), sparse_rank.get(i, missing), i))[
            :top_k
        ]
        if not best:
            return []
        cosines = snapshot.vectors(np.array(best, dtype=np.int64)) @ q
        chunks = snapshot.chunks(best)
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
